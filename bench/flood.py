"""A Backpack-protocol websocket that floods bookTicker and markPrice frames (run as its own process).

Every frame carries its send time in `E` (wall-clock µs, as the venue's event time), so the receiver can
measure how long a quote took to reach it. Commands on stdin, one per line:
  flood <rate per second, 0: as fast as possible> <seconds>   -> prints {"sent": n, "seconds": s}
A trickle of 20 frames per second runs otherwise, so the engine always has fresh quotes.
"""

from __future__ import annotations

import json
import sys
import threading
import time

from exchanges.sim.ws import SimWsServer

SYMBOL = "BTC_USDC_PERP"
TRICKLE_PER_S = 20


def _frames(counter: int) -> tuple[str, str]:
    now_us = time.time_ns() // 1000
    price = 100000 + (counter % 200) / 10
    if counter % 2 == 0:
        data = {
            "e": "bookTicker",
            "E": now_us,
            "s": SYMBOL,
            "a": f"{price + 0.5:.1f}",
            "A": "1.5",
            "b": f"{price - 0.5:.1f}",
            "B": "2.5",
            "u": str(counter),
            "T": now_us,
        }
        stream = f"bookTicker.{SYMBOL}"
    else:
        data = {
            "e": "markPrice",
            "E": now_us,
            "s": SYMBOL,
            "p": f"{price:.1f}",
            "f": "0.0001",
            "i": f"{price:.1f}",
            "n": now_us // 1000 + 3600000,
            "T": now_us,
        }
        stream = f"markPrice.{SYMBOL}"
    return stream, json.dumps({"stream": stream, "data": data})


class Flood:
    """The server and its publishing loop."""

    def __init__(self) -> None:
        self.ws = SimWsServer(self._on_message).start()
        self.counter = 0
        self.lock = threading.Lock()

    @staticmethod
    def _on_message(text: str) -> tuple[set[str], set[str], str | None]:
        msg = json.loads(text)
        streams = {str(s) for s in msg.get("params", [])}
        return (streams, set(), None) if msg.get("method") == "SUBSCRIBE" else (set(), streams, None)

    def send(self) -> None:
        """One frame to its subscribers."""
        with self.lock:
            self.counter += 1
            stream, frame = _frames(self.counter)
            self.ws.publish(stream, frame)

    def trickle(self, stop: threading.Event) -> None:
        """Background frames so quotes never go stale."""
        while not stop.wait(1 / TRICKLE_PER_S):
            self.send()

    def flood(self, rate: float, seconds: float) -> dict[str, float]:
        """Send as many frames as `rate` allows (0: no limit) for `seconds`."""
        start = time.monotonic()
        sent = 0
        while (now := time.monotonic()) - start < seconds:
            if rate > 0 and sent >= (now - start) * rate:
                time.sleep(min(0.0005, 1 / rate))
                continue
            self.send()
            sent += 1
        return {"sent": sent, "seconds": time.monotonic() - start}


def main() -> int:
    """Print the URL, then serve commands until stdin closes."""
    flood = Flood()
    print(json.dumps({"ws": f"ws://127.0.0.1:{flood.ws.port}"}), flush=True)
    stop = threading.Event()
    threading.Thread(target=flood.trickle, args=(stop,), daemon=True).start()
    for line in sys.stdin:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "flood":
            print(json.dumps(flood.flood(float(parts[1]), float(parts[2]))), flush=True)
    stop.set()
    flood.ws.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
