//go:build !race

package viewcheck

const raceEnabled = false
