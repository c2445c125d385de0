package console_test

import "testing"

func testBrowser(t *testing.T, r *rig) { t.Skip("todo") }
