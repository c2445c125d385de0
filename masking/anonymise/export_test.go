package anonymise

import "time"

// SlowDetector makes every detection take at least d (tests).
func SlowDetector(d time.Duration) { slowDown.Store(int64(d)) }
