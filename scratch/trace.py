from __future__ import annotations
import asyncio, sys
sys.path.insert(0, "tests"); sys.path.insert(0, "scratch")
from explore import cell
from grok_scheduler._limits import _adaptive
orig = _adaptive.RateController._set
def traced(self, dimension, rate, now, reason, *, recovering=False):
    if not recovering or int(now*4) % 4 == 0:
        print(f"  t={now:7.3f} {dimension} -> {rate:7.3f} ({reason})")
    return orig(self, dimension, rate, now, reason, recovering=recovering)
_adaptive.RateController._set = traced
lat, ev, given = float(sys.argv[1]), sys.argv[2], sys.argv[3]
print(asyncio.run(cell(lat, ev, given)))
