package tpm

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel kill cmd when this process dies, so that
// a crashed agent or test leaves no swtpm behind.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
