//go:build race

package e2e

// raceEnabled: the test binary runs with the race detector, so the
// `ledgerd serve` children are built with it too (a race in the server
// then shows up in their log, which the tests scan).
const raceEnabled = true
