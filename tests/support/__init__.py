"""Helpers shared by several modules' tests. They import nothing from tinytorch, so
any module's tests may use them without leaving their dependency closure."""
