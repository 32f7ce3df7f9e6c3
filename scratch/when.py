from __future__ import annotations
import asyncio, sys
sys.path.insert(0, "tests"); sys.path.insert(0, "scratch")
import explore
from worlds import World
orig_init = World.__init__
worlds = []
def init(self, *a, **k):
    orig_init(self, *a, **k); worlds.append(self)
World.__init__ = init
lat, ev, given = float(sys.argv[1]), sys.argv[2], sys.argv[3]
print(asyncio.run(explore.cell(lat, ev, given)))
w = worlds[0]
t0 = min(s.at for s in w.sent)
print([round(s.at - t0, 2) for s in w.sent if s.status == 429])
