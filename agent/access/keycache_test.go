package access

import (
	"fmt"
	"testing"
)

// The cache of derived keys stays bounded whatever passwords are checked
// (a running agent checks what its clients send), and still serves the
// password used again and again.
func TestKeyCacheIsBounded(t *testing.T) {
	defer func(n int) { keyCacheMax = n }(keyCacheMax)
	keyCacheMax = 3
	for i := range 7 {
		accessKey("s", "op", fmt.Sprintf("guess-%d", i))
		keyCache.Lock()
		n := len(keyCache.m)
		keyCache.Unlock()
		if n > keyCacheMax {
			t.Fatalf("%d keys cached after %d checks (max %d)", n, i+1, keyCacheMax)
		}
	}
	k := accessKey("s", "op", "guess-6")
	if &k[0] != &accessKey("s", "op", "guess-6")[0] {
		t.Error("the last password's key is not served from the cache")
	}
}
