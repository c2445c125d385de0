package recserve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"velo/agent/audit"
	"velo/agent/config"
	"velo/agent/retention"
	"velo/internal/testkit"
)

// segStore serves one segment of segBytes (the sealed store's decryption
// is tested in agent/retention; here only what leaves the socket counts).
type segStore struct{ decrypts atomic.Int32 }

const segBytes = 2 << 20 // far more than a unix socket buffers

var testSeg = retention.Segment{Name: "cam1-20260101T000000Z.mkv.sealed", Camera: "cam1", Start: time.Unix(1767225600, 0).UTC()}

func (s *segStore) Segments() []retention.Segment       { return []retention.Segment{testSeg} }
func (s *segStore) Age(retention.Segment) time.Duration { return time.Minute }
func (s *segStore) Decrypt(_ string, w io.Writer) (int64, error) {
	s.decrypts.Add(1)
	chunk := bytes.Repeat([]byte{7}, 64<<10)
	var n int64
	for n < segBytes {
		k, err := w.Write(chunk)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// failingAuditor refuses every entry (a full disk).
type failingAuditor struct{}

func (failingAuditor) Append(audit.Entry) (audit.Entry, error) {
	return audit.Entry{}, errors.New("no space left on device")
}

// exportServer serves an exporter's config on a socket; it returns the
// socket, the store and the audit folder.
func exportServer(t *testing.T, aud func(*audit.Log) Auditor) (string, *segStore, string) {
	t.Helper()
	cfg, err := config.Load(testkit.WriteSite(t, strings.Replace(testkit.SiteYAML, "roles: [live-viewer]", "roles: [exporter]", 1)))
	if err != nil {
		t.Fatal(err)
	}
	sockDir, err := os.MkdirTemp("", "rs") // short: a socket path is at most 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	adir := t.TempDir()
	al, err := audit.Open(adir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Listen(filepath.Join(sockDir, "r.sock"))
	if err != nil {
		t.Fatal(err)
	}
	st := &segStore{}
	s.Config, s.Store, s.Audit, s.Log = func() *config.Config { return cfg }, st, aud(al), zerolog.Nop()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Serve(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return s.Path(), st, adir
}

func exportReq() Request {
	return Request{V: Version, Op: OpExport, Operator: "ops", Password: testkit.OperatorPassword, Segment: testSeg.Name,
		Ref: "Proc. pen. 7/2026", Out: "copy.mkv"}
}

// An export is audited as started, with its judicial reference, before
// the first byte; a client that stops reading leaves a failed entry with
// the bytes sent, and no ok.
func TestExportAuditedBeforeStreamingAndOnFailure(t *testing.T) {
	sock, st, adir := exportServer(t, func(l *audit.Log) Auditor { return l })
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(exportReq())
	if _, err := c.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
	var rep Reply
	if err := readJSON(bufio.NewReader(c), &rep, maxReply); err != nil || !rep.OK {
		t.Fatalf("reply %+v %v", rep, err)
	}
	started, _ := audit.Show(adir, audit.Filter{Action: "export"})
	if len(started) == 0 || started[0].Outcome != "started" || started[0].Ref != "Proc. pen. 7/2026" || started[0].Fields["peer_uid"] == "" {
		t.Fatalf("no export entry before the first byte: %+v", started)
	}
	c.Close() // the client stops reading
	var es []audit.Entry
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if es, _ = audit.Show(adir, audit.Filter{Action: "export"}); len(es) > 1 {
			break
		}
	}
	if len(es) != 2 || es[1].Outcome != "failed" || es[1].Ref != "Proc. pen. 7/2026" {
		t.Fatalf("after a client that stopped reading: %+v", es)
	}
	if n, err := strconv.ParseInt(es[1].Fields["bytes"], 10, 64); err != nil || n >= segBytes || !strings.Contains(es[1].Detail, "stopped after") {
		t.Errorf("failed entry: bytes %q, detail %q", es[1].Fields["bytes"], es[1].Detail)
	}
	if st.decrypts.Load() != 1 {
		t.Errorf("%d decryptions", st.decrypts.Load())
	}
	// A whole export: started, then ok with its SHA-256 and the seq the
	// client puts in its sidecar.
	var body bytes.Buffer
	_, tr, err := (&Client{Socket: sock}).Do(exportReq(), &body)
	if err != nil || tr.Bytes != segBytes {
		t.Fatalf("export: %v %+v", err, tr)
	}
	es, _ = audit.Show(adir, audit.Filter{Action: "export"})
	if len(es) != 4 || es[2].Outcome != "started" || es[3].Outcome != "ok" || es[3].Fields["sha256"] != tr.SHA256 || es[3].Seq != tr.AuditSeq {
		t.Errorf("a whole export's entries: %+v (trailer %+v)", es, tr)
	}
}

// When the first audit entry cannot be written nothing is streamed.
func TestExportRefusedWhenNotAudited(t *testing.T) {
	sock, st, _ := exportServer(t, func(*audit.Log) Auditor { return failingAuditor{} })
	var body bytes.Buffer
	rep, _, err := (&Client{Socket: sock}).Do(exportReq(), &body)
	if err == nil || rep.OK || !strings.Contains(err.Error(), "nothing is exported") || body.Len() != 0 || st.decrypts.Load() != 0 {
		t.Errorf("an export without its audit entry: %v ok=%v, %d bytes, %d decryptions", err, rep.OK, body.Len(), st.decrypts.Load())
	}
}
