#!/usr/bin/env bash
# Test case names that catch_discover_tests (Catch2 2.13's CatchAddTests.cmake)
# cannot carry into a ctest entry, checked on the names the built binaries
# list. Each was tried against Catch2 2.13 and CMake 3.25:
#   ;          splits the name into two ctest entries, neither matching a test
#   \          Catch's filter reads it as an escape: the entry matches nothing
#   ]==]       ends the bracket argument of the generated script: that entry
#              and every later one of the binary silently disappear
#   ~ first    the filter becomes an exclusion: the entry runs every other test
#   exclude:   the same, spelt out
#   * first or last   a wildcard: the entry runs every test that name matches
# (`,`, `[` and `]` are escaped by catch_discover_tests and are fine.)
# With `--warn NoTests` an entry that matches nothing fails; this check names
# the cause before anything runs, and also catches the cases that pass.
#
#   test_names.sh BINARY...     exit 0 when every name is safe
set -u
failures=0
for binary in "$@"; do
    # Catch2 2.13 exits with the number of names listed, so the status says nothing.
    names=$("$binary" --list-test-names-only)
    if [ -z "$names" ]; then
        echo "test_names: $binary listed no test case"
        failures=$((failures + 1))
    fi
    while IFS= read -r name; do
        [ -z "$name" ] && continue
        why=""
        case "$name" in
            *\;*) why="contains ';' (splits into two ctest entries)" ;;
            *\\*) why="contains '\\' (Catch's filter reads an escape)" ;;
            *']='*) why="contains ']=' (can end the generated script's bracket argument)" ;;
            '~'*) why="starts with '~' (the filter excludes it)" ;;
            exclude:*) why="starts with 'exclude:' (the filter excludes it)" ;;
            '*'* | *'*') why="starts or ends with '*' (the filter is a wildcard)" ;;
        esac
        if [ -n "$why" ]; then
            echo "test_names: $(basename "$binary"): \"$name\" $why"
            failures=$((failures + 1))
        fi
    done <<< "$names"
done
if [ "$failures" -gt 0 ]; then
    echo "test_names: $failures problem(s)"
    exit 1
fi
echo "test_names: ok ($# binaries)"
