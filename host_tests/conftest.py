# pytest setup: make `ice` (lib/) and the shared test helpers (host_tests/)
# importable even without `pip install -e .`.
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
for _p in (_HERE, os.path.join(os.path.dirname(_HERE), "lib")):
    if _p not in sys.path:
        sys.path.insert(0, _p)
