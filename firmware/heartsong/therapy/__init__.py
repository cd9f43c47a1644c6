"""Therapy: the closed loop that turns heart signals into sound, with a breath pacer.

``policy`` (pure: settings and guidance -> sound targets, with reasons), ``pacer``
(resonance-breathing pacer), ``resonance`` (personal resonance rate over sessions),
``stress_response`` (stress -> darker, slower, more masking sound), ``sleep_onset``
(sleep detection from the heart signals), ``explain`` (adaptations as events),
``settings`` (the ``[therapy]`` tuning), ``response`` (the heart's answer to a
soundscape, drift-corrected), ``preference`` (Thompson sampling over soundscapes, kept in
the state directory), ``learner`` (the two together) and ``controller`` (the object the
appliance calls once per metrics update).
"""
