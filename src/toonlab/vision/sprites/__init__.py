"""A labelled set of real hand-drawn animation: the artist-made sprite animations of three Debian game packages.

Readers (one per package) turn the game's own animation definitions into `Animation`s: Wesnoth unit `.cfg` files
(`wesnoth.py`, through the WML reader in `wml.py`), SuperTux `.sprite` files (`supertux.py`) and Frozen Bubble's
numbered penguin sequences (`frozen_bubble.py`). `timing.py` places each drawing on a 24 fps timeline from its
duration in ms, `render.py` composites and encodes the clips, `captions.py` writes the two captions, and
`build.py` runs it all, then the normal curate -> dedup -> split path (`toonlab vision build-sprites OUT`).
"""
