package main

// The tests load configs as they wrote them, whatever DEALSYNC_* the shell
// exports.
import _ "github.com/dealsync/dealsync/internal/testenv"
