"""Whole-answer rewrites before comparing: assignments, approximations, x ∈ S, matrix arithmetic,
and inequalities in one variable as intervals."""

from __future__ import annotations

import itertools

from verifiers.math.nodes import Node, free_names

_INF = Node("const", (), "inf")


def is_name(node: Node) -> bool:
    """A variable-like left-hand side (a label): x, F_n, f(x), AB, and ratios of them (a:b, a/b)."""
    if node.op == "div":
        return len(node.args) == 2 and all(is_name(a) for a in node.args)
    return node.op in ("sym", "sub", "ufunc") or (node.op == "mul" and all(is_name(a) for a in node.args))


def is_assignment(rel: Node) -> bool:
    return rel.op == "rel" and all(op == "=" for op in rel.val) and is_name(rel.args[0])


def normalize_top(node: Node) -> Node:
    if node.op in ("add", "mul", "neg") and any(n.op == "matrix" for n in node.args):
        node = reduce_matrices(node)
    if node.op == "list" and node.args and is_assignment(node.args[0]):
        first, rest = node.args[0], node.args[1:]
        if rest and all(a.op != "rel" for a in rest):  # "n = 1, 2, 3"
            return Node("rel", (first.args[0], Node("list", (first.args[-1], *rest))), ("=",))
    if node.op == "list":
        return _inequalities_as_union(node) or node
    if node.op != "rel":
        return node
    node = _cut_approximation(node)
    if node.val == ("in",) and is_name(node.args[0]):  # x ∈ [1, 2]
        return node.args[1]
    if is_assignment(node) and len(node.val) > 1:  # x = 5 + 5 + 1 = 11  ->  x = 11
        return Node("rel", (node.args[0], node.args[-1]), ("=",))
    return node


def _inequalities_as_union(node: Node) -> Node | None:
    """'x < 0 or x > 2' (a list of inequalities in one variable) -> (-oo, 0) ∪ (2, oo), when the
    intervals are pairwise disjoint: then "or" is the only reading (with "and" the set is empty)."""
    if not 2 <= len(node.args) <= 8 or not all(a.op == "rel" and "=" not in a.val for a in node.args):
        return None
    sets = [rel_to_set(a) for a in node.args]
    if any(s is None or s.op != "interval" for s in sets):
        return None
    if len({n.val for a in node.args for n in a.args if n.op == "sym"}) != 1:
        return None
    spans = []
    for s in sets:
        lo, hi = _bound(s.args[0]), _bound(s.args[1])
        if lo is None or hi is None:
            return None
        spans.append((lo, hi, s.val))
    spans.sort(key=lambda t: (t[0], t[1]))
    for (_, hi, (_, hi_closed)), (lo, _, (lo_closed, _)) in itertools.pairwise(spans):
        if lo < hi or (lo == hi and hi_closed and lo_closed):
            return None  # overlapping: "x > 0, x < 5" may mean both at once
    return Node("union", tuple(sets))


def _bound(node: Node) -> float | None:
    """An interval end as a number (±inf included), or None when it is not a plain number."""
    from verifiers.math.numeric import exact

    is_inf = lambda n: n.op == "const" and n.val == "inf"  # noqa: E731
    if is_inf(node):
        return float("inf")
    if node.op == "neg" and is_inf(node.args[0]):
        return float("-inf")
    try:
        value = exact(node)
    except (ArithmeticError, ValueError, TypeError):
        return None
    return None if value is None else float(value)


def _cut_approximation(rel: Node) -> Node:
    """x ≈ 11 is x = 11; in 'x = 1/3 ≈ 0.33' and '1/3 ≈ 0.33' what follows ≈ is dropped."""
    ops = rel.val
    if "~" not in ops:
        return rel
    if ops[0] == "~" and is_name(rel.args[0]):
        return Node("rel", rel.args, tuple("=" if op == "~" else op for op in ops))
    cut = ops.index("~")
    if cut == 0:
        return rel.args[0]
    return Node("rel", rel.args[: cut + 1], ops[:cut])


def rel_to_set(rel: Node) -> Node | None:
    """'-2 <= x <= 7' -> [-2, 7];  'x > 5' -> (5, oo);  'x != 3' -> (-oo, 3) ∪ (3, oo)."""
    items, ops = rel.args, rel.val
    names = {a.val for a in items if a.op == "sym"}
    if len(names) != 1:
        return None
    var = names.pop()
    if any(not (a.op == "sym" and a.val == var) and free_names(a) for a in items):
        return None
    if ops == ("!=",):
        point = items[1] if items[0].op == "sym" else items[0]
        left = Node("interval", (Node("neg", (_INF,)), point), (False, False))
        return Node("union", (left, Node("interval", (point, _INF), (False, False))))
    low = high = None
    low_closed = high_closed = False
    for k, op in enumerate(ops):
        lhs, rhs = items[k], items[k + 1]
        if lhs.op == "sym" and lhs.val == var:
            bound, flipped = rhs, False
        elif rhs.op == "sym" and rhs.val == var:
            bound, flipped = lhs, True
        else:
            return None
        if op not in ("<", "<=", ">", ">="):
            return None
        upper = (op in ("<", "<=")) != flipped
        if upper:
            high, high_closed = bound, op.endswith("=")
        else:
            low, low_closed = bound, op.endswith("=")
    low = low if low is not None else Node("neg", (_INF,))
    high = high if high is not None else _INF
    return Node("interval", (low, high), (low_closed, high_closed))


# ---- matrices -------------------------------------------------------------------------------------


def _cells(m: Node) -> list[list[Node]]:
    rows, cols = m.val
    return [list(m.args[r * cols : (r + 1) * cols]) for r in range(rows)]


def _matrix(rows: list[list[Node]]) -> Node:
    return Node("matrix", tuple(c for r in rows for c in r), (len(rows), len(rows[0])))


def reduce_matrices(node: Node) -> Node:
    """Carry out +, - and products of explicit matrices (and scalars times matrices)."""
    if node.op not in ("add", "mul", "neg"):
        return node
    args = [reduce_matrices(a) for a in node.args]
    if not any(a.op == "matrix" for a in args):
        return node
    if node.op == "neg":
        return _matrix([[Node("neg", (c,)) for c in row] for row in _cells(args[0])])
    if node.op == "add":
        if not all(a.op == "matrix" and a.val == args[0].val for a in args):
            return node
        grids = [_cells(a) for a in args]
        rows, cols = args[0].val
        return _matrix(
            [[Node("add", tuple(g[r][c] for g in grids)) for c in range(cols)] for r in range(rows)]
        )
    out = args[0]
    for b in args[1:]:
        if out.op == "matrix" and b.op == "matrix":
            (n, k), (k2, m) = out.val, b.val
            if k != k2:
                return node
            x, y = _cells(out), _cells(b)
            out = _matrix(
                [
                    [Node("add", tuple(Node("mul", (x[i][t], y[t][j])) for t in range(k))) for j in range(m)]
                    for i in range(n)
                ]
            )
        elif out.op == "matrix" or b.op == "matrix":
            m, s = (out, b) if out.op == "matrix" else (b, out)
            out = _matrix([[Node("mul", (s, c)) for c in row] for row in _cells(m)])
        else:
            out = Node("mul", (out, b))
    return out
