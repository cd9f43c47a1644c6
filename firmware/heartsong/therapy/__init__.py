"""Therapy: the policy that turns heart signals into sound parameters, and the breath pacer."""
