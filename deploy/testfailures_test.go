package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The CI summary shows what a failed test said (make test prints it):
// its own lines, with -v streaming or not, and nothing of the tests that
// passed or of the OpenCV warnings between them.
func TestFailureSummaryShowsWhyATestFailed(t *testing.T) {
	log := `=== RUN   TestA
    a_test.go:3: a log
[ WARN:0@1.0] global cap_gstreamer.cpp open OpenCV | GStreamer warning: noise
=== RUN   TestA/sub
    a_test.go:3: sub broke
--- FAIL: TestA (0.00s)
    --- FAIL: TestA/sub (0.00s)
=== RUN   TestB
    b_test.go:4: fine
--- PASS: TestB (0.00s)
--- FAIL: TestC (1.00s)
    c_test.go:5: c broke after the fact
ok  	velo/other	1.0s
`
	path := filepath.Join(t.TempDir(), "test.log")
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", "testfailures.sh", path).CombinedOutput()
	if err != nil {
		t.Fatalf("testfailures.sh: %v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{"### TestA", "a log", "sub broke", "--- FAIL: TestC", "c broke after the fact"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	for _, not := range []string{"fine", "WARN", "ok  \tvelo/other"} {
		if strings.Contains(got, not) {
			t.Errorf("summary shows %q:\n%s", not, got)
		}
	}
}
