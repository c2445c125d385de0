package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"velo/agent"
	"velo/agent/audit"
)

func cmdAudit(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "verify" && args[0] != "show") {
		return usageError{"audit: subcommands are `verify` and `show`"}
	}
	sub := args[0]
	help := map[string]string{
		"verify": "velo audit verify: check the audit log's hash chain (and, with --anchors, that it matches the chain heads published over MQTT, which detects truncation and rewriting); prints OK or the first broken link, and the time it took. Exits 1 when broken.",
		"show":   "velo audit show: print audit entries, filtered by operator, camera, action and time.",
	}[sub]
	fs := newFlags("audit "+sub, stderr, help)
	cfgPath := fs.String("config", "/etc/velo/site.yaml", "site config (the log is in <state_dir>/audit)")
	dir := fs.String("dir", "", "audit directory (instead of --config)")
	from := fs.String("from", "", "only entries at or after this time (RFC 3339 or YYYY-MM-DD)")
	to := fs.String("to", "", "only entries at or before this time (RFC 3339 or YYYY-MM-DD, a date means its end)")
	asJSON := fs.Bool("json", false, "JSON output (docs/cli-json.md)")
	var anchors, operator, camera, action *string
	if sub == "verify" {
		anchors = fs.String("anchors", "", "file of audit_head events as received from MQTT (one JSON per line; `mosquitto_sub -v` lines work)")
	} else {
		operator = fs.String("operator", "", "only this operator (\"agent\" for the agent's own actions)")
		camera = fs.String("camera", "", "only this camera")
		action = fs.String("action", "", "only this action (command_executed, live_view, recording_access, export, retention_deleted, hold_set, drift, …)")
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	d := *dir
	if d == "" {
		cfg, err := agent.Load(*cfgPath)
		if err != nil {
			return err
		}
		d = agent.AuditDir(cfg)
	}
	if _, err := os.Stat(d); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	f, err := parseWhen(*from, false)
	if err != nil {
		return usageError{"audit: --from: " + err.Error()}
	}
	t, err := parseWhen(*to, true)
	if err != nil {
		return usageError{"audit: --to: " + err.Error()}
	}
	if sub == "show" {
		es, err := audit.Show(d, audit.Filter{Actor: *operator, Camera: *camera, Action: *action, From: f, To: t})
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			for _, e := range es {
				if err := enc.Encode(e); err != nil {
					return err
				}
			}
			return nil
		}
		for _, e := range es {
			line := fmt.Sprintf("%6d %s %-10s %-18s", e.Seq, e.Time, e.Actor, e.Action)
			for _, kv := range [][2]string{{"camera", e.Camera}, {"outcome", e.Outcome}, {"reason", e.Reason}, {"ref", e.Ref}, {"detail", e.Detail}} {
				if kv[1] != "" {
					line += fmt.Sprintf(" %s=%q", kv[0], kv[1])
				}
			}
			fmt.Fprintln(stdout, line)
		}
		fmt.Fprintf(stderr, "%d entries\n", len(es))
		return nil
	}
	opts := audit.VerifyOptions{From: f, To: t}
	if *anchors != "" {
		if opts.Anchors, err = readAnchors(*anchors); err != nil {
			return err
		}
	}
	rep, err := audit.Verify(d, opts)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(stdout, rep.String())
	}
	if !rep.OK {
		return fmt.Errorf("audit: the log is broken at seq %d: %s", rep.Broken.Seq, rep.Broken.Why)
	}
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
