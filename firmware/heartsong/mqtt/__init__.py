"""MQTT link to the smart home (paho-mqtt 2.x): availability, state, and later discovery."""
