"""Connect two agents through every pair of simulated NAT types and print the
virtual time from start (credentials and candidates trickling) to both sides
connected, with the selected pair's candidate types as the controlling side
sees them.

    python tools/sim_matrix.py          # or: micropython tools/sim_matrix.py
"""

import sys

from scenarios import NAT_CHOICES, Session


def cell(nat_a, nat_b, seed):
    s = Session(nat_a, nat_b, seed=seed)
    if not s.connect(30000):
        return "no direct path"
    pair = s.a.selected_pair
    return "%5d ms %s/%s" % (s.connected_at, pair.local.type, pair.remote.type)


def main():
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    names = [n or "none" for n in NAT_CHOICES]
    print("virtual connect time, 10 ms links, 30 ms signalling, seed %d" % seed)
    print("rows: controlling side's NAT; columns: controlled side's NAT")
    print("%-16s" % "" + "".join("%-24s" % n for n in names))
    for nat_a in NAT_CHOICES:
        row = [cell(nat_a, nat_b, seed) for nat_b in NAT_CHOICES]
        print("%-16s" % (nat_a or "none") + "".join("%-24s" % c for c in row))


main()
