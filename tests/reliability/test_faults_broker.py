"""The MQTT broker is killed and restarted while the whole appliance runs.

A real mosquitto (the ``mosquitto_broker`` fixture of ``tests/conftest.py``, with
persistence on so its own subscriber misses nothing) is stopped for a few real seconds,
then started again on the same port. The link is built by the same wiring as on the
device (``heartsong.wiring.make_mqtt``: paho's 1-60 s reconnect back-off, the on-disk
outbox in the state folder). The promises: the appliance keeps measuring; every state
document it published reaches the broker, in order, or is still in the on-disk outbox at
shutdown; every update is also in the session store; the link is back within one
reconnect back-off step after the broker returns.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from heartsong.mqtt.link import RECONNECT_MAX_S
from heartsong.mqtt.spool import OUTBOX_FILE, Spool
from mqtt_tls import Recorder, wait_for
from reliability.figures import record
from reliability.rig import base_config, build_rig

SPEED = 40.0
OUTAGE_REAL_S = 3.0


def test_broker_killed_and_restarted(persistent_broker: Any, state_dir: Path) -> None:
    broker = persistent_broker
    cfg = base_config(**{
        "sources.ble": True, "mqtt.enabled": True, "mqtt.host": broker.host,
        "mqtt.port": broker.port, "mqtt.publish_interval_s": 5.0,
    })
    rig = build_rig(cfg, speed=SPEED, state_dir=state_dir, mqtt=True)
    link = rig.mqtt
    assert link is not None
    topic = link.state_topic
    late_topic = link.topics.state_late
    rec = Recorder(broker.host, broker.port, topic + "/#", "reliability-rec", persistent=True)
    sent: list[float] = []
    publish = link.publish_state

    def counting_publish(state: Any) -> None:
        sent.append(float(state["wall_s"]))
        publish(state)

    link.publish_state = counting_publish  # type: ignore[method-assign]
    with rig.running() as result:
        assert wait_for(lambda: link.connected and len(rec.on(topic)) >= 5, timeout_s=60)
        broker.stop()
        t_kill = time.monotonic()
        assert wait_for(lambda: not link.connected)
        queued_before = len(sent)
        time.sleep(max(0.0, OUTAGE_REAL_S - (time.monotonic() - t_kill)))
        spooled_in_outage = len(sent) - queued_before
        broker.start()
        t_back = time.monotonic()
        assert wait_for(lambda: link.connected, timeout_s=RECONNECT_MAX_S + 30)
        reconnect_s = time.monotonic() - t_back

        def all_arrived() -> bool:
            got = {d["wall_s"] for d in rec.json_on(topic) + rec.json_on(late_topic)}
            return link.queued == 0 and {round(w, 3) for w in sent} <= got

        assert wait_for(all_arrived, timeout_s=60)
        drained_s = time.monotonic() - t_back
    assert result == [0]
    got = [d["wall_s"] for d in rec.json_on(topic) + rec.json_on(late_topic)]
    late = list(dict.fromkeys(d["wall_s"] for d in rec.json_on(late_topic)))
    rec.close()
    live = list(dict.fromkeys(d["wall_s"] for d in rec.json_on(topic)))
    assert late and late == sorted(late)  # what waited came in order (first arrivals)
    spool = Spool(state_dir / OUTBOX_FILE)
    parked = len(spool)
    spool.close()
    first_seen = list(dict.fromkeys(got))
    sent_ids = list(dict.fromkeys(round(w, 3) for w in sent))
    missing = [w for w in sent_ids if w not in set(first_seen)]
    lost_mqtt = max(0, len(missing) - parked)
    lost_store = rig.lost_in_store()
    record(
        "broker_restart", title="MQTT broker killed and restarted",
        faults=f"real mosquitto stopped for {OUTAGE_REAL_S:.0f} s real "
               f"({OUTAGE_REAL_S * SPEED:.0f} s simulated), then started on the same port",
        outcome="kept running, exit 0; state spooled on disk and delivered in order on the "
                "late topic (the live one carries only fresh state)",
        recovery=f"reconnected {reconnect_s:.1f} s and outbox drained {drained_s:.1f} s after "
                 f"the broker returned (real; bound: paho back-off {RECONNECT_MAX_S} s)",
        data_lost=lost_mqtt + lost_store, produced=len(rig.produced),
        memory=rig.memory_growth(), reconnect_s=reconnect_s, drained_s=drained_s,
        published=len(sent_ids), spooled_in_outage=spooled_in_outage,
        dropped=link.dropped,
    )
    assert spooled_in_outage >= 1, "nothing was published while the broker was away"
    assert lost_mqtt == 0 and link.dropped == 0
    # in order on each topic, and nothing measured in the outage reaches the live topic
    # (Home Assistant would record it as the present)
    assert live == sorted(live)
    outage = {round(w, 3) for w in sent[queued_before:queued_before + spooled_in_outage]}
    assert outage and not outage & set(live)
    assert lost_store == 0
