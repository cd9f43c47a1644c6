"""MQTT link to the smart home (paho-mqtt 2.x) with Home Assistant discovery.

One idea per module:

``link``       the connection: paho callbacks wired to the parts below (:class:`MqttLink`)
``topics``     topic names of one device
``discovery``  Home Assistant discovery: the device and its entities
``commands``   command types, payload schema, the handler protocol
``router``     topic -> rate limit -> schema on paho's thread; rejections as JSON
``apply``      what a command does to the policy settings (the appliance's side)
``ratelimit``  token bucket
``outbox``     ordered, at-least-once delivery of state documents
``spool``      the bounded on-disk queue behind the outbox (SQLite)
``schedule``   when a state document is due (on change, at the interval)
``privacy``    which values may leave the device
``security``   password source, TLS context, why a connection failed

See ``docs/home-assistant.md`` for what appears in Home Assistant.
"""
