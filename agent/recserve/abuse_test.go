package recserve

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"velo/agent/audit"
	"velo/agent/config"
	"velo/agent/retention"
	"velo/internal/testkit"
	"velo/masking/anonymise/spec"
)

// Requests without a valid login, which anyone in the socket's group can
// send at will, cannot flood the audit log: the first of a burst from one
// uid is audited on its own, the rest in one summary entry; the strings a
// client sends are cut before they are audited.
func TestRefusedLoginsAreSummarised(t *testing.T) {
	cfg, err := config.Load(testkit.WriteSite(t, testkit.SiteYAML))
	if err != nil {
		t.Fatal(err)
	}
	adir := t.TempDir()
	al, err := audit.Open(adir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, stop := serveForTest(t, cfg, &segStore{}, al)
	const n = 40
	long := strings.Repeat("\xff", 600) // 3.6 KB each as JSON escapes: the request stays under MaxRequest
	for range n {
		_, _, err := (&Client{Socket: s.Path()}).Do(Request{Op: OpList, Operator: "x" + long, Reason: long, Ref: long}, nil)
		if err == nil {
			t.Fatal("a request without a password was served")
		}
	}
	stop() // the open burst is summarised at the end
	es, _ := audit.Show(adir, audit.Filter{Action: auditActions[OpList]})
	if len(es) != 2 || es[1].Fields["count"] != "39" || !strings.Contains(es[1].Detail, "39 refused requests") {
		t.Fatalf("%d audit entries for %d refused requests (want the first and one summary of 39): %+v", len(es), n, es)
	}
	for _, e := range es {
		if len(e.Actor)+len(e.Reason)+len(e.Ref)+len(e.Detail) > 2000 {
			t.Errorf("entry %d keeps %d bytes of what the client sent", e.Seq, len(e.Actor)+len(e.Reason)+len(e.Ref)+len(e.Detail))
		}
	}
}

// A legal hold released while the audit log cannot be written stays: the
// release is audited before it is done, and nothing is done unaudited.
func TestER45_HoldReleaseNotDoneUnaudited(t *testing.T) {
	site := strings.Replace(testkit.SiteYAML, "roles: [live-viewer]", "roles: [exporter]", 1) + "state_dir: " + t.TempDir() + "\n"
	cfg, err := config.Load(testkit.WriteSite(t, site))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{cfg.StateDir, cfg.Outputs.RecordDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	seg := testSeg
	seg.Name = "cam1-20260101T000000Z.mkv" + retention.SealedExt
	if err := os.WriteFile(filepath.Join(cfg.Outputs.RecordDir, seg.Name), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := retention.SetHold(cfg.Outputs.RecordDir, cfg.StateDir, retention.Hold{Segment: seg.Name, Ref: "Proc. 1/2026", By: "x", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s, _ := serveForTest(t, cfg, &namedSegStore{seg: seg}, failingAuditor{})
	_, _, err = (&Client{Socket: s.Path()}).Do(Request{Op: OpRelease, Operator: "ops", Password: testkit.OperatorPassword, Segment: seg.Name}, nil)
	if err == nil || !strings.Contains(err.Error(), "nothing is done") {
		t.Errorf("release without its audit entry: %v", err)
	}
	if holds, _ := retention.ReadHolds(cfg.StateDir); holds[seg.Name].Ref != "Proc. 1/2026" {
		t.Errorf("the hold was released without an audit entry: %+v", holds)
	}
}

// namedSegStore lists one segment of a real segment name.
type namedSegStore struct {
	segStore
	seg retention.Segment
}

func (n *namedSegStore) Segments() []retention.Segment { return []retention.Segment{n.seg} }

// serveForTest serves st's recordings under cfg on a socket;
// stop ends the server and waits for it.
func serveForTest(t *testing.T, cfg *config.Config, st Store, aud Auditor, set ...func(*Server)) (*Server, func()) {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "rs") // short: a socket path is at most 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	s, err := Listen(filepath.Join(sockDir, "r.sock"))
	if err != nil {
		t.Fatal(err)
	}
	s.Config, s.Store, s.Audit, s.Log = func() *config.Config { return cfg }, st, aud, zerolog.Nop()
	for _, f := range set {
		f(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Serve(ctx) })
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return s, stop
}

// blockingCopier makes no copy: it waits until its context ends.
type blockingCopier struct{ cancelled chan struct{} }

func (b blockingCopier) CopySubject(ctx context.Context, _ spec.SubjectJob, _ io.Writer) (spec.SubjectReport, error) {
	<-ctx.Done()
	close(b.cancelled)
	return spec.SubjectReport{}, ctx.Err()
}

// A data subject's copy (minutes of decoding) stops when its client hangs
// up, freeing the one slot such copies have, not when it would have ended.
func TestSubjectCopyCancelledWhenTheClientHangsUp(t *testing.T) {
	site := strings.Replace(testkit.SiteYAML, "roles: [live-viewer]", "roles: [exporter]", 1) + "state_dir: " + t.TempDir() + "\n"
	cfg, err := config.Load(testkit.WriteSite(t, site))
	if err != nil {
		t.Fatal(err)
	}
	al, err := audit.Open(t.TempDir(), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bc := blockingCopier{cancelled: make(chan struct{})}
	s, _ := serveForTest(t, cfg, &segStore{}, al, func(s *Server) { s.Subjects = bc })
	c, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	from, to := testSeg.Start, testSeg.Start.Add(10*time.Second)
	b, _ := json.Marshal(Request{V: Version, Op: OpSubjectExport, Operator: "ops", Password: testkit.OperatorPassword, Camera: testSeg.Camera,
		From: &from, To: &to, Mark: "frame=0,point=0.5,0.5", Reason: SubjectReason, Ref: "DSR-1"})
	if _, err := c.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
	var rep Reply
	if err := readJSON(bufio.NewReader(c), &rep, maxReply); err != nil || !rep.OK {
		t.Fatalf("the copy did not start: %+v %v", rep, err)
	}
	c.Close()
	select {
	case <-bc.cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the copy went on after its client hung up")
	}
}

// What a copy interrupted by a crash left (an unencrypted MP4) is removed
// when the agent starts serving again.
func TestSubjectTempClearedAtStart(t *testing.T) {
	state := t.TempDir()
	left := filepath.Join(state, subjectTempDir, "copy-123.mp4")
	if err := os.MkdirAll(filepath.Dir(left), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(left, []byte("frames of a data subject"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ClearSubjectTemp(state); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); err == nil {
		t.Error("the interrupted copy is still there")
	}
}
