//go:build race

package viewcheck

// raceEnabled: the race detector slows the long single-goroutine runs
// over rendered frames (the simulated day, the tamper series) ten times;
// make test runs those without -race (the matprofile run).
const raceEnabled = true
