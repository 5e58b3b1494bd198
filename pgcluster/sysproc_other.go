//go:build !linux

package pgcluster

import "syscall"

// setParentDeathSignal is a no-op where the kernel has no parent-death signal
// (macOS, the BSDs): there the postmaster outlives a killed parent and the
// next Start reports it as still running.
func setParentDeathSignal(a *syscall.SysProcAttr, sig syscall.Signal) {}
