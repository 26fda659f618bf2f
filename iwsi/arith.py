"""Arithmetic on untrusted text without eval() (pure): numbers, + - * / and unary minus only.

Used by the SVAMP loader (its `Equation` field → worked steps) and the taxonomy's wrong-step rule.
"""
from __future__ import annotations

import ast
import operator
from typing import Callable

OPS = {ast.Add: ("+", operator.add), ast.Sub: ("-", operator.sub), ast.Mult: ("*", operator.mul),
       ast.Div: ("/", operator.truediv)}


def evaluate(source: str, on_step: Callable[[float, str, float, float], None] | None = None) -> float:
    """The value of `source`; `on_step(left, symbol, right, value)` sees each operation, innermost
    first. Anything else (names, calls, powers) raises ValueError; also SyntaxError, ZeroDivisionError.

    >>> evaluate("2 + 3 * 4"), evaluate("-(7.5 / 2.5)")
    (14.0, -3.0)
    """
    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in OPS:
            left, right = walk(node.left), walk(node.right)
            symbol, fn = OPS[type(node.op)]
            value = fn(left, right)
            if on_step:
                on_step(left, symbol, right, value)
            return value
        raise ValueError(f"not arithmetic: {ast.dump(node)[:40]}")

    return walk(ast.parse(source.strip(), mode="eval").body)
