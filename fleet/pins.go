package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"velo/internal/safefile"
)

// Pin is what the fleet keeps of a gateway's audit chain across its own
// restarts (state_file): the key pinned at the first head and the last
// head, so a key change or a rewind while the fleet was down is still an
// incident.
type Pin struct {
	Site    string `json:"site"`
	Gateway string `json:"gateway"`
	Key     string `json:"audit_key"`
	Seq     uint64 `json:"audit_seq"`
	Hash    string `json:"audit_hash"`
}

// Pins returns every gateway's audit pin, sorted.
func (s *State) Pins() []Pin {
	s.mu.RLock()
	var out []Pin
	for k, p := range s.pins {
		if g := s.gateways[k]; g == nil || !g.audit.pinned {
			out = append(out, p) // a pin loaded for a gateway not heard from yet
		}
	}
	for _, g := range s.gateways {
		if a := g.audit; a.pinned {
			out = append(out, Pin{Site: g.site, Gateway: g.name, Key: a.key, Seq: a.seq, Hash: a.hash})
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Site+"/"+out[i].Gateway < out[j].Site+"/"+out[j].Gateway })
	return out
}

// SetPins loads pins (before the first message): a gateway's first head
// is then checked against its pin instead of being pinned.
func (s *State) SetPins(pins []Pin) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pins = map[gwKey]Pin{}
	for _, p := range pins {
		s.pins[gwKey{p.Site, p.Gateway}] = p
	}
}

// pinnedChain is the audit chain a new gateway starts with.
func (s *State) pinnedChain(k gwKey) auditChain {
	p, ok := s.pins[k]
	if !ok {
		return auditChain{}
	}
	return auditChain{pinned: true, key: p.Key, seq: p.Seq, hash: p.Hash}
}

// maxPinsBytes bounds the state file, read and written.
const maxPinsBytes = 64 << 20

// loadPins reads the state file; a missing file is an empty one.
func loadPins(path string) ([]Pin, error) {
	raw, err := safefile.Read(path, safefile.ReadOptions{MaxBytes: maxPinsBytes, NoLinks: true})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fleet state_file: %w", err)
	}
	var pins []Pin
	if err := json.Unmarshal(raw, &pins); err != nil {
		return nil, fmt.Errorf("fleet state_file %s: %w (move it away to start with no pins)", path, err)
	}
	return pins, nil
}

func savePins(path string, pins []Pin) error {
	b, err := json.MarshalIndent(pins, "", " ")
	if err != nil {
		return err
	}
	if len(b) >= maxPinsBytes {
		// never write what the next start would refuse to read
		return fmt.Errorf("fleet state_file %s: %d bytes of pins, over the %d limit", path, len(b), maxPinsBytes)
	}
	return safefile.WriteFile(path, append(b, '\n'), 0o600)
}
