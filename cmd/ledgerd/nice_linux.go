package main

import (
	"os"
	"strconv"
	"syscall"
)

// lowerPriority gives every thread of this process the CPU niceness n. On
// Linux a niceness belongs to a thread, not to the process, and a new
// thread takes its creator's: so each existing thread is set, and the
// threads the Go runtime starts later inherit it.
func lowerPriority(n int) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, n); err != nil {
			return err
		}
	}
	return nil
}
