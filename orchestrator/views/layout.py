"""A layered (Sugiyama-style) drawing of the module graph, top to bottom, for the HTML page.

  1. layers are given (View.layers: each module one below its deepest dependency);
  2. an edge that spans k layers becomes a chain through k-1 dummy nodes, so it owns
     a slot in every layer it crosses and never passes under a module;
  3. crossing reduction: barycenter sweeps down and up, adjacent swaps (transpose),
     keeping the best order seen;
  4. x coordinates: each layer as close as it can get to its neighbours in the layer
     above or below (least squares under minimum gaps, solved exactly by pool adjacent
     violators), dummy chains weighted heavier so long edges run straight;
  5. a drawing much taller than wide (the --strict chain) wraps into columns, the
     links between columns running down, up the gap and over the top.

Edges are drawn as cubic curves whose control points stay inside the gap between
two layers, so a curve never enters a layer band except through its own dummy slots.
Pure Python and deterministic: the same graph gives the same page.
"""
from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

NODE_W, NODE_H = 150, 46     # a module's box
GAP = 22                     # between two modules in a layer
DUMMY_GAP = 12               # between an edge slot and anything beside it
RANK_GAP = 52                # between two layers, where edges bend
MARGIN = 16
COLUMN_GAP = 40              # between two columns of a wrapped drawing
SCREEN = (1040, 860)         # the graph's share of a 1400x900 window, beside the panel
SWEEPS = 24
RESTARTS = 12

Dummy = tuple[str, str, int]   # a slot of the edge (from, to) in layer r
Node = str | Dummy             # a module or a dummy


@dataclass
class Layout:
    width: float
    height: float
    nodes: dict[str, tuple[float, float]]            # module -> centre (x, y)
    edges: list[tuple[str, str, str]]                # (from, to, SVG path d)


def layered(layers: list[list[str]], edges: list[tuple[str, str]]) -> Layout:
    rank = {n: r for r, layer in enumerate(layers) for n in layer}
    order: list[list[Node]] = [list(layer) for layer in layers]
    above: defaultdict[Node, list[Node]] = defaultdict(list)   # neighbours one layer up
    below: defaultdict[Node, list[Node]] = defaultdict(list)   # and one layer down
    chains: list[tuple[str, str, list[Node]]] = []
    for a, b in edges:
        if rank[b] <= rank[a]:
            raise ValueError(f"edge {a} -> {b} does not go down the layers")
        dummies = [(a, b, r) for r in range(rank[a] + 1, rank[b])]   # a tuple is a dummy
        for d in dummies:
            order[d[2]].append(d)
        chain: list[Node] = [a, *dummies, b]
        for u, v in zip(chain, chain[1:]):
            below[u].append(v)
            above[v].append(u)
        chains.append((a, b, chain))
    order = _reduce_crossings(order, above, below)
    x = _place(order, above, below)
    x, y, column, wraps, width, height = _arrange(order, x, below, _bands(order, x))
    ports = _ports(x, above, below)
    paths = [(a, b, _path(c, x, y, ports, column, wraps)) for a, b, c in chains]
    return Layout(round(width, 1), round(height, 1),
                  {n: (round(x[n], 1), round(y[n], 1)) for layer in layers for n in layer}, paths)


def _width(n) -> float:
    return 0.0 if isinstance(n, tuple) else NODE_W


# -- 3. crossing reduction ---------------------------------------------------------

def _crossings(upper: list, lower: list, below) -> int:
    pos = {n: i for i, n in enumerate(lower)}
    ends = [pos[v] for u in upper for v in sorted(below[u], key=pos.__getitem__)]
    return sum(1 for i in range(len(ends)) for j in range(i + 1, len(ends)) if ends[j] < ends[i])


def _total(order, below) -> int:
    return sum(_crossings(order[r], order[r + 1], below) for r in range(len(order) - 1))


def _reduce_crossings(order: list[list], above, below) -> list[list]:
    """Sweeps from the curriculum order, then from a few shuffled starts (fixed seeds:
    the same graph always gets the same drawing); the fewest crossings win."""
    best = _sweep([list(layer) for layer in order], above, below)
    for seed in range(RESTARTS):
        start = [list(layer) for layer in order]
        shuffle = random.Random(seed).shuffle
        for layer in start:
            shuffle(layer)
        candidate = _sweep(start, above, below)
        if _total(candidate, below) < _total(best, below):
            best = candidate
    return best


def _sweep(order: list[list], above, below) -> list[list]:
    best, best_count = [list(layer) for layer in order], _total(order, below)
    for sweep in range(SWEEPS):
        down = sweep % 2 == 0
        ranks = range(1, len(order)) if down else range(len(order) - 2, -1, -1)
        for r in ranks:
            fixed = order[r - 1] if down else order[r + 1]
            order[r] = _by_barycenter(order[r], fixed, above if down else below)
        _transpose(order, above, below)
        count = _total(order, below)
        if count < best_count:
            best, best_count = [list(layer) for layer in order], count
        if best_count == 0:
            break
    return best


def _by_barycenter(layer: list, fixed: list, neighbours) -> list:
    pos = {n: i for i, n in enumerate(fixed)}

    def key(item):
        i, n = item
        near = [pos[m] for m in neighbours[n]]
        return (sum(near) / len(near) if near else i, i)   # no neighbours: stay put
    return [n for _, n in sorted(enumerate(layer), key=key)]


def _transpose(order: list[list], above, below) -> None:
    """Swap neighbours in a layer while that removes crossings with the layers around it."""
    pos: dict[Node, int] = {}

    def cost(u, v):   # crossings between u's and v's edges when u stands left of v
        return sum(1 for side in (above, below) for p in side[u] for q in side[v]
                   if pos[p] > pos[q])
    improved = True
    while improved:
        improved = False
        pos = {n: i for layer in order for i, n in enumerate(layer)}
        for layer in order:
            for i in range(len(layer) - 1):
                u, v = layer[i], layer[i + 1]
                if cost(v, u) < cost(u, v):
                    layer[i], layer[i + 1] = v, u
                    pos[u], pos[v] = i + 1, i
                    improved = True


# -- 4. coordinates ------------------------------------------------------------

def _place(order: list[list], above, below) -> dict:
    x = {}
    for layer in order:
        at = 0.0
        for i, n in enumerate(layer):
            at += _sep(layer[i - 1], n) if i else 0.0
            x[n] = at
    for sweep in range(8):
        for r in (range(1, len(order)) if sweep % 2 == 0 else range(len(order) - 2, -1, -1)):
            side = above if sweep % 2 == 0 else below
            _align(order[r], x, side.__getitem__)
    for r in range(len(order)):     # a last pass that listens to both sides
        _align(order[r], x, lambda n: above[n] + below[n])
    return x


def _sep(a, b) -> float:
    gap = GAP if not (isinstance(a, tuple) or isinstance(b, tuple)) else DUMMY_GAP
    return (_width(a) + _width(b)) / 2 + gap


def _align(layer: list, x: dict, neighbours) -> None:
    """Move a layer towards its neighbours' mean x, keeping order and gaps (least squares)."""
    offsets, at = [], 0.0
    for i, n in enumerate(layer):
        at += _sep(layer[i - 1], n) if i else 0.0
        offsets.append(at)
    targets, weights = [], []
    for n, off in zip(layer, offsets):
        near = neighbours(n)
        w = [4.0 if isinstance(n, tuple) and isinstance(m, tuple) else 1.0 for m in near]
        want = sum(wi * x[m] for wi, m in zip(w, near)) / sum(w) if near else x[n]
        targets.append(want - off)
        weights.append(sum(w) if near else 0.25)
    for n, off, v in zip(layer, offsets, _isotonic(targets, weights)):
        x[n] = v + off


def _isotonic(values: list[float], weights: list[float]) -> list[float]:
    """The non-decreasing sequence nearest to `values` (weighted least squares): PAVA."""
    blocks: list[tuple[float, float, int]] = []   # (mean, weight, count)
    for v, w in zip(values, weights):
        blocks.append((v, w, 1))
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            blocks.append(((v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, c1 + c2))
    return [mean for mean, _, count in blocks for _ in range(count)]


# -- 5. columns: a long thin drawing (a chain, say) wraps into columns side by side ----

def _extent(order: list[list], x: dict, band) -> tuple[float, float]:
    nodes = [n for r in band for n in order[r]]
    return min(x[n] - _width(n) / 2 for n in nodes), max(x[n] + _width(n) / 2 for n in nodes)


def _bands(order: list[list], x: dict) -> list[range]:
    """Consecutive layers per column: as many columns as make the drawing largest when
    fitted to SCREEN (fewer columns unless more are clearly better)."""
    best, best_scale = [range(len(order))], 0.0
    for columns in range(1, len(order) + 1):
        per = -(-len(order) // columns)
        bands = [range(i, min(i + per, len(order))) for i in range(0, len(order), per)]
        width = sum(hi - lo for lo, hi in (_extent(order, x, b) for b in bands)) \
            + (len(bands) - 1) * (COLUMN_GAP + 8) + 2 * MARGIN
        height = per * NODE_H + (per - 1) * RANK_GAP + 2 * MARGIN + (28 if len(bands) > 1 else 0)
        scale = min(SCREEN[0] / width, SCREEN[1] / height)
        if scale > best_scale * 1.1:
            best, best_scale = bands, scale
    return best


def _arrange(order: list[list], x: dict, below, bands: list[range]):
    """Final coordinates, and the lane of every link that wraps from one column to the next:
    down below its column, up the gap beside it, over the top of the next one."""
    column = {n: k for k, band in enumerate(bands) for r in band for n in order[r]}
    crossing = [sorted(((u, v) for u in order[band[-1]] for v in below[u]),
                       key=lambda link: -x[link[0]])
                for band in bands[:-1]]
    most = max((len(c) for c in crossing), default=0)
    top = MARGIN + (8 + 6 * most if most else 0)        # room above for the wrapping links
    y = {n: top + NODE_H / 2 + (r - band.start) * (NODE_H + RANK_GAP)
         for band in bands for r in band for n in order[r]}
    placed: dict[Node, float] = {}
    at: float = MARGIN
    rights: list[float] = []
    for k, band in enumerate(bands):
        lo, hi = _extent(order, x, band)
        for r in band:
            for n in order[r]:
                placed[n] = x[n] - lo + at
        rights.append(at + hi - lo)
        at = rights[-1] + (COLUMN_GAP + 8 * len(crossing[k]) if k < len(crossing) else 0)
    wraps = {}
    for k, links in enumerate(crossing):
        bottom = y[order[bands[k][-1]][0]] + NODE_H / 2
        for i, link in enumerate(links):
            wraps[link] = (rights[k] + COLUMN_GAP / 2 + 8 * i,      # the lane, up the gap
                           bottom + 8 + 6 * i,                      # below column k
                           top - 8 - 6 * (len(links) - 1 - i))      # above column k + 1
    bottoms = [y[order[b[-1]][0]] + NODE_H / 2 for b in bands]
    height = max(bottoms) + (8 + 6 * most if most else 0) + MARGIN
    return placed, y, column, wraps, at + MARGIN, height


# -- edges -----------------------------------------------------------------------

def _ports(x: dict, above, below) -> dict:
    """Where each edge leaves or enters a module: spread along its bottom and top sides."""
    ports = {}
    for n in x:
        if isinstance(n, tuple):
            continue
        for side, near in (("out", below[n]), ("in", above[n])):
            ends = sorted(near, key=lambda m: x[m])
            span = min(NODE_W * 0.6, 14 * (len(ends) - 1))
            for i, m in enumerate(ends):
                shift = span * (i / (len(ends) - 1) - 0.5) if len(ends) > 1 else 0.0
                ports[(side, n, m)] = x[n] + shift
    return ports


def _path(chain: list, x: dict, y: dict, ports: dict, column: dict, wraps: dict) -> str:
    a, b = chain[0], chain[-1]
    points = [(ports[("out", a, chain[1])], y[a] + NODE_H / 2)]
    for d in chain[1:-1]:                       # straight down through each slot
        points += [(x[d], y[d] - NODE_H / 2), (x[d], y[d] + NODE_H / 2)]
    points.append((ports[("in", b, chain[-2])], y[b] - NODE_H / 2))
    d = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    for i in range(0, len(points) - 1, 2):      # pairs: bottom of one layer, top of the next
        (x1, y1), (x2, y2) = points[i], points[i + 1]
        u, v = chain[i // 2], chain[i // 2 + 1]
        if column[u] != column[v]:
            lane, under, over = wraps[(u, v)]
            d.append(_rounded([(x1, y1), (x1, under), (lane, under), (lane, over), (x2, over),
                               (x2, y2)]))
        else:
            bend = (y2 - y1) / 2
            d.append(f"C{x1:.1f},{y1 + bend:.1f} {x2:.1f},{y2 - bend:.1f} {x2:.1f},{y2:.1f}")
        if i + 2 < len(points):
            d.append(f"L{points[i + 2][0]:.1f},{points[i + 2][1]:.1f}")
    return " ".join(d)


def _rounded(points: list[tuple[float, float]], radius: float = 8) -> str:
    """A polyline from points[0] (already drawn to) with its corners rounded."""
    out = []
    for (ax, ay), (cx, cy), (bx, by) in zip(points, points[1:], points[2:]):
        into, away = abs(cx - ax) + abs(cy - ay), abs(bx - cx) + abs(by - cy)
        r = min(radius, into / 2, away / 2)
        sx, sy = cx - (cx - ax) / into * r, cy - (cy - ay) / into * r
        ex, ey = cx + (bx - cx) / away * r, cy + (by - cy) / away * r
        out.append(f"L{sx:.1f},{sy:.1f} Q{cx:.1f},{cy:.1f} {ex:.1f},{ey:.1f}")
    out.append(f"L{points[-1][0]:.1f},{points[-1][1]:.1f}")
    return " ".join(out)
