"""Buttons and LEDs on the GPIO header (gpiozero, imported only when pins are opened).

:mod:`.settings` holds the ``[controls]`` configuration section, :mod:`.pins` the pin
checks, :mod:`.buttons` and :mod:`.leds` the parts, :mod:`.controller` the glue the
appliance runs. Nothing is imported here, so the configuration can load the section
without loading the rest.
"""
