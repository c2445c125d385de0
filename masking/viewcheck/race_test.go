//go:build race

package viewcheck

// raceEnabled: the race detector slows the long simulated-day run ten
// times; make test runs it without -race (the matprofile run).
const raceEnabled = true
