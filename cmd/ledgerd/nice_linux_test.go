package main

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// TestLowerPriority runs lowerPriority in a child process (it cannot be
// undone) and checks that every thread, including those started after it,
// has the niceness.
func TestLowerPriority(t *testing.T) {
	if os.Getenv("LEDGERD_TEST_NICE_CHILD") == "1" {
		if err := lowerPriority(7); err != nil {
			t.Fatal(err)
		}
		// Threads started afterwards: goroutines locked to their threads
		// make the runtime start new ones.
		var wg sync.WaitGroup
		release := make(chan struct{})
		for range 4 {
			wg.Go(func() {
				runtime.LockOSThread()
				<-release
			})
		}
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, task := range tasks {
			b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/stat")
			if err != nil {
				continue
			}
			f := strings.Fields(string(b)[strings.LastIndexByte(string(b), ')')+2:])
			if f[16] != "7" { // field 19 of stat, counted after the command
				t.Errorf("thread %s has niceness %s", task.Name(), f[16])
			}
		}
		close(release)
		wg.Wait()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLowerPriority$", "-test.count=1")
	cmd.Env = append(os.Environ(), "LEDGERD_TEST_NICE_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
