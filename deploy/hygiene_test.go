package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// maxBinaryBytes is the size above which a tracked binary file fails the
// hygiene test: build outputs and media belong in build/ or releases.
const maxBinaryBytes = 1 << 20

// TestRepoHygiene checks every tracked file (git ls-files) of the checkout:
// no compiled executable and no binary over 1 MiB is committed, and nothing
// refers to guidance files kept outside the repository: the parent folder's
// shared/ and the upper-case guidance file names. Rules are cited by ID and
// explained in docs/regulation.md. It skips when the source is not a git
// checkout (a tarball, a module download).
func TestRepoHygiene(t *testing.T) {
	top, files := trackedFiles(t)
	t.Run("no executables or large binaries", func(t *testing.T) {
		var bad []string
		for _, f := range files {
			if why := binaryProblem(filepath.Join(top, f)); why != "" {
				bad = append(bad, f+": "+why)
			}
		}
		if len(bad) > 0 {
			t.Errorf("%d tracked file(s) should not be in git:\n%s", len(bad), strings.Join(bad, "\n"))
		}
	})
	t.Run("no references to guidance outside the repo", func(t *testing.T) {
		var bad []string
		for _, f := range files {
			bad = append(bad, outsideReferences(t, top, f)...)
		}
		if len(bad) > 0 {
			t.Errorf("%d line(s) refer to guidance outside the repo; say the fact, cite the rule ID, or point to docs/:\n%s",
				len(bad), strings.Join(bad, "\n"))
		}
	})
}

// trackedFiles returns the top of the git checkout holding this package and
// its tracked files, or skips the test when there is no checkout.
func trackedFiles(t *testing.T) (string, []string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if _, statErr := os.Stat("../.git"); statErr == nil {
			t.Fatalf("a git checkout, but no git: %v", err)
		}
		t.Skip("no git, and not a git checkout")
	}
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	top := strings.TrimSpace(string(out))
	list, err := exec.Command("git", "-C", top, "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	var files []string
	for _, f := range strings.Split(string(list), "\x00") {
		if f != "" {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		t.Fatalf("git ls-files in %s lists no file", top)
	}
	return top, files
}

// executableKind names the compiled executable or object format whose first
// bytes head starts with (ELF, Mach-O in both byte orders and universal,
// PE/COFF), or returns "".
func executableKind(head []byte) string {
	for _, m := range []struct {
		kind  string
		magic []byte
	}{
		{"ELF", []byte("\x7fELF")},
		{"Mach-O", []byte{0xfe, 0xed, 0xfa, 0xce}},
		{"Mach-O", []byte{0xfe, 0xed, 0xfa, 0xcf}},
		{"Mach-O", []byte{0xce, 0xfa, 0xed, 0xfe}},
		{"Mach-O", []byte{0xcf, 0xfa, 0xed, 0xfe}},
		{"Mach-O universal", []byte{0xca, 0xfe, 0xba, 0xbe}},
		{"PE", []byte("MZ")},
	} {
		// A text file may start with "MZ"; a PE header has NUL bytes.
		if bytes.HasPrefix(head, m.magic) && (m.kind != "PE" || bytes.IndexByte(head, 0) >= 0) {
			return m.kind
		}
	}
	return ""
}

// binaryProblem says why the file at path must not be tracked ("" when it
// may): a compiled executable of any size, or a binary (a NUL byte in its
// first 8000 bytes, as git decides) over 1 MiB. A tracked file missing from
// the working tree, or a symlink, is not checked.
func binaryProblem(path string) string {
	st, err := os.Lstat(path)
	if err != nil || !st.Mode().IsRegular() {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	head := make([]byte, 8000)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return err.Error()
	}
	head = head[:n]
	if kind := executableKind(head); kind != "" {
		return fmt.Sprintf("%s executable (%d bytes)", kind, st.Size())
	}
	if bytes.IndexByte(head, 0) >= 0 && st.Size() > maxBinaryBytes {
		return fmt.Sprintf("binary, %.1f MiB (over %d MiB)", float64(st.Size())/(1<<20), maxBinaryBytes>>20)
	}
	return ""
}

// outsidePatterns are the references outside the repository: its parent's
// shared folder, and the guidance files by name (built here from their stems
// so that this file does not name them itself).
func outsidePatterns() []string {
	patterns := []string{".." + "/shared"}
	for _, stem := range []string{"REGULATION", "RELIABILITY", "PERFORMANCE", "PLATFORM", "DESIGN", "STYLE", "ONVIF"} {
		patterns = append(patterns, stem+".md")
	}
	return patterns
}

// outsideReferences lists "file:line: text" for each line of the tracked
// file f that refers to guidance outside the repository.
func outsideReferences(t *testing.T, top, f string) []string {
	file, err := os.Open(filepath.Join(top, f))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Errorf("%s: %v", f, err)
		return nil
	}
	defer file.Close()
	patterns := outsidePatterns()
	var found []string
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		for _, p := range patterns {
			if strings.Contains(line, p) {
				found = append(found, fmt.Sprintf("%s:%d: %s", f, n, clip(strings.TrimSpace(line), 160)))
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Errorf("%s: %v", f, err)
	}
	return found
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
