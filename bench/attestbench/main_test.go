package main

import (
	"testing"
	"time"
)

// TestSmallRun runs the benchmark at a small scale, so that it keeps
// working between runs of `make bench`: 60 hosts, two of them real, over
// three controllers on SQLite, every second; a controller dies and its
// hosts are attested by the others.
func TestSmallRun(t *testing.T) {
	if err := run(60, 3, 30, time.Second, 1, "sqlite"); err != nil {
		t.Fatal(err)
	}
}
