//go:build !linux

package tpm

import "os/exec"

// setDeathSignal does nothing where the kernel cannot kill a child with
// its parent: swtpm then stops only with its context.
func setDeathSignal(*exec.Cmd) {}
