# Recipes mirroring ./dev (https://just.systems); arguments pass through, quoting intact.

set positional-arguments

# Run the whole system on this machine until Ctrl-C.
up *args:
    ./dev up "$@"

# Every check CI runs: ruff format, ruff check, mypy, pytest (extra arguments go to pytest).
test *args:
    ./dev test "$@"
