"""Reading the graph module 01 records (`_op`, `_parents`) without module 05's engine."""


def graph_of(output) -> list:
    """Every tensor reachable from `output` through `_parents` (output included), once."""
    seen, stack = {}, [output]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen[id(node)] = node
            stack.extend(node._parents)
    return list(seen.values())
