package e2e

import "syscall"

// childSysProcAttr makes a `ledgerd serve` child die with the test binary,
// so that a crashed or interrupted test run leaves no server behind.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
