//go:build linux

package pgcluster

import "syscall"

// setParentDeathSignal makes the kernel send sig to the child when the thread
// that started it dies, so that a crashed or killed ledgerd does not leave an
// orphaned postmaster behind. Go applies it after switching credentials, so it
// survives the switch to the postgres user.
func setParentDeathSignal(a *syscall.SysProcAttr, sig syscall.Signal) {
	a.Pdeathsig = sig
}
