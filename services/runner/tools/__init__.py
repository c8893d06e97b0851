"""Tools a run can call: the interface here, one module per kind of tool beside it."""
