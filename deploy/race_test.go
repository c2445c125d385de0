//go:build race

package deploy

// raceEnabled: the race detector slows the rendering of the demo's views
// ten times; make test runs those checks without -race in a second pass.
const raceEnabled = true
