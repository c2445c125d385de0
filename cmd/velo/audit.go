package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"velo/agent/audit"
	"velo/agent/config"
	"velo/internal/safefile"
)

func auditCommand(s streams) *ffcli.Command {
	return group("velo audit", "verify and read the audit log", `The audit log is hash-chained: each entry carries the hash of the one
before. It records commands, live views, recording accesses, exports,
holds, retention deletions, drift, reloads and every refusal.`,
		auditVerifyCommand(s), auditShowCommand(s))
}

// auditScope is the log and the time range the audit subcommands read.
type auditScope struct {
	config, dir, from, to string
	json                  bool
	// cfg is the site config read by resolve (nil with --dir).
	cfg *config.Config
}

func (a *auditScope) declare(fs *flag.FlagSet) {
	fs.StringVar(&a.config, "config", "/etc/velo/site.yaml", "site config `FILE` (the log is in <state_dir>/audit)")
	fs.StringVar(&a.dir, "dir", "", "audit directory `DIR` (instead of --config)")
	fs.StringVar(&a.from, "from", "", "only entries at or after this `TIME` (RFC 3339 or YYYY-MM-DD)")
	fs.StringVar(&a.to, "to", "", "only entries at or before this `TIME` (RFC 3339 or YYYY-MM-DD, a date means its end)")
	fs.BoolVar(&a.json, "json", false, "JSON output (docs/cli-json.md)")
}

// resolve returns the audit directory and the time range.
func (a *auditScope) resolve() (dir string, from, to time.Time, err error) {
	dir = a.dir
	if dir == "" {
		cfg, err := config.Load(a.config)
		if err != nil {
			return "", from, to, err
		}
		dir, a.cfg = config.AuditDir(cfg), cfg
	}
	if _, err := os.Stat(dir); err != nil {
		return "", from, to, fmt.Errorf("audit: %w", err)
	}
	if from, err = parseWhen(a.from, false); err != nil {
		return "", from, to, usageError{msg: "audit: --from: " + err.Error()}
	}
	if to, err = parseWhen(a.to, true); err != nil {
		return "", from, to, usageError{msg: "audit: --to: " + err.Error()}
	}
	return dir, from, to, nil
}

type auditVerifyOptions struct {
	auditScope
	anchors, pubkey string
}

func auditVerifyCommand(s streams) *ffcli.Command {
	fs := newFlagSet("audit verify")
	o := &auditVerifyOptions{}
	o.declare(fs)
	fs.StringVar(&o.anchors, "anchors", "", "`FILE` of audit_head events as received from MQTT (one JSON per line; mosquitto_sub -v lines work)")
	fs.StringVar(&o.pubkey, "pubkey", "", "`FILE` of the gateway's pinned checkpoint public key(s), 64 hex digits a line (default: audit.pub in the state directory)")
	return &ffcli.Command{
		Name:       "verify",
		ShortUsage: synopsis("velo audit verify", fs, ""),
		ShortHelp:  "check the audit log's hash chain",
		LongHelp: `Check the audit log's hash chain and the signature of every
audit_checkpoint entry: a log rewritten with recomputed hashes fails at
the first checkpoint after the change. The public key is the state
directory's audit.pub (beside --dir's directory), or, stronger, the one the
centre pinned (--pubkey); it is printed after the result. With --anchors (the
audit_head events the agent published over MQTT) also detect truncation.
Prints OK with the entries after the last checkpoint (not yet signed), or
the first broken link, and the time it took; exits 1 when the log is
broken.`,
		FlagSet: fs,
		Exec: func(_ context.Context, args []string) error {
			if err := noOperands(fs, args); err != nil {
				return err
			}
			return o.run(s)
		},
	}
}

func (o *auditVerifyOptions) run(s streams) error {
	dir, from, to, err := o.resolve()
	if err != nil {
		return err
	}
	opts := audit.VerifyOptions{From: from, To: to}
	if o.anchors != "" {
		if opts.Anchors, err = readAnchors(o.anchors); err != nil {
			return err
		}
	}
	keyFile, err := o.publicKeys(dir, &opts)
	if err != nil {
		return err
	}
	rep, err := audit.Verify(dir, opts)
	if err != nil {
		return err
	}
	if o.json {
		enc := json.NewEncoder(s.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(s.stdout, rep.String())
		for _, k := range opts.PublicKeys {
			fmt.Fprintf(s.stdout, "public key %x (%s)\n", []byte(k), keyFile)
		}
		if len(opts.PublicKeys) == 0 {
			fmt.Fprintln(s.stdout, "no public key (no --pubkey, no audit.pub in the state directory): checkpoint signatures NOT checked")
		}
	}
	if !rep.OK {
		return fmt.Errorf("audit: the log is broken at seq %d: %s", rep.Broken.Seq, rep.Broken.Why)
	}
	return nil
}

// publicKeys fills opts' keys (and, with --config, the site and gateway
// every checkpoint must name) and returns the file they came from: --pubkey,
// else the state directory's audit.pub when there is one (a log never
// signed has none: its checkpoints are then reported unchecked).
func (o *auditVerifyOptions) publicKeys(dir string, opts *audit.VerifyOptions) (string, error) {
	if o.cfg != nil {
		opts.Site, opts.Gateway = o.cfg.Site.ID, o.cfg.Gateway
	}
	path := o.pubkey
	if path == "" {
		path = audit.PubKeyFile(filepath.Dir(filepath.Clean(dir)))
		if o.cfg != nil {
			path = audit.PubKeyFile(o.cfg.StateDir)
		}
		if _, err := os.Stat(path); err != nil {
			return "", nil
		}
	}
	data, err := safefile.ReadFile(path, 64<<10)
	if err != nil {
		return "", fmt.Errorf("audit: public key: %w", err)
	}
	opts.PublicKeys, err = audit.ParsePublicKeys(path, data)
	return path, err
}

type auditShowOptions struct {
	auditScope
	operator, camera, action string
}

func auditShowCommand(s streams) *ffcli.Command {
	fs := newFlagSet("audit show")
	o := &auditShowOptions{}
	o.declare(fs)
	fs.StringVar(&o.operator, "operator", "", "only this operator `NAME` (\"agent\" for the agent's own actions)")
	fs.StringVar(&o.camera, "camera", "", "only this camera `ID`")
	fs.StringVar(&o.action, "action", "", "only this `ACTION` (command_executed, live_view, recording_access, export, retention_deleted, hold_set, drift, …)")
	return &ffcli.Command{
		Name:       "show",
		ShortUsage: synopsis("velo audit show", fs, ""),
		ShortHelp:  "print audit entries by operator, camera, action, time",
		LongHelp: `Print audit entries (commands, live views, recording accesses, exports,
holds, retention deletions, drift, reloads…), one per line, then their
count on standard error; with --json, one JSON object per line.`,
		FlagSet: fs,
		Exec: func(_ context.Context, args []string) error {
			if err := noOperands(fs, args); err != nil {
				return err
			}
			return o.run(s)
		},
	}
}

func (o *auditShowOptions) run(s streams) error {
	dir, from, to, err := o.resolve()
	if err != nil {
		return err
	}
	es, err := audit.Show(dir, audit.Filter{Actor: o.operator, Camera: o.camera, Action: o.action, From: from, To: to})
	if err != nil {
		return err
	}
	if o.json {
		enc := json.NewEncoder(s.stdout)
		for _, e := range es {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	for _, e := range es {
		// Every field may hold what a peer sent (a claimed user name, a
		// stream path): escaped, so that it can neither forge a line nor
		// act on the terminal.
		line := fmt.Sprintf("%6d %s %-10s %-18s", e.Seq, audit.Clean(e.Time, 0), audit.Clean(e.Actor, 0), audit.Clean(e.Action, 0))
		for _, kv := range [][2]string{{"camera", e.Camera}, {"outcome", e.Outcome}, {"reason", e.Reason}, {"ref", e.Ref}, {"detail", e.Detail}} {
			if kv[1] != "" {
				line += fmt.Sprintf(" %s=%q", kv[0], kv[1])
			}
		}
		fmt.Fprintln(s.stdout, line)
	}
	fmt.Fprintf(s.stderr, "%d entries\n", len(es))
	return nil
}

func parseWhen(s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation("2006-01-02", s, time.Local)
	if err != nil {
		return t, fmt.Errorf("%q is neither RFC 3339 nor YYYY-MM-DD", s)
	}
	if end {
		t = t.Add(24*time.Hour - time.Nanosecond)
	}
	return t, nil
}

// readAnchors reads audit_head events: one JSON object per line, possibly
// prefixed by a topic (mosquitto_sub -v).
func readAnchors(path string) ([]audit.Head, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit: anchors: %w", err)
	}
	defer f.Close()
	var out []audit.Head
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		i := strings.IndexByte(line, '{')
		if i < 0 {
			continue
		}
		var ev struct {
			Kind string `json:"kind"`
			audit.Head
		}
		if err := json.Unmarshal([]byte(line[i:]), &ev); err != nil {
			return nil, fmt.Errorf("audit: %s:%d: %v", path, n, err)
		}
		if ev.Kind != "audit_head" {
			continue
		}
		if ev.Seq == 0 || len(ev.Hash) != 64 {
			return nil, fmt.Errorf("audit: %s:%d: audit_head without audit_seq/audit_hash", path, n)
		}
		out = append(out, ev.Head)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("audit: %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("audit: %s: no audit_head events", path)
	}
	return out, nil
}
