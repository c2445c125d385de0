package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"velo/agent/config"
	"velo/internal/safefile"
)

// Proposal is a view an installer saved: it changes nothing until an admin
// approves it (ER-4.7).
type Proposal struct {
	ID     string `json:"id"`
	Camera string `json:"camera"`
	Preset string `json:"preset"`
	// Name and Position: a new preset saved in commissioning (Preset is
	// the token the camera gave it); approving it adds the preset.
	Name     string                  `json:"name,omitempty"`
	Position *config.ManagedPosition `json:"position,omitempty"`
	Masks    []Mask                  `json:"masks"`
	Note     string                  `json:"note,omitempty"`
	By       string                  `json:"by"`
	Created  time.Time               `json:"created"`
	Status   string                  `json:"status"` // proposed, approved, superseded
	Approval *config.ApprovalConfig  `json:"approval,omitempty"`
	// ApprovedBy is the admin who entered the approval, at ApprovedAt.
	ApprovedBy string    `json:"approved_by,omitempty"`
	ApprovedAt time.Time `json:"approved_at,omitzero"`
	Diff       string    `json:"diff,omitempty"`
}

// maxProposals bounds the file: the oldest decided ones go first.
const maxProposals = 200

// proposals are kept in <state_dir>/console/proposals.json.
type proposals struct {
	path string
	mu   sync.Mutex
}

func (p *proposals) load() ([]Proposal, error) {
	data, err := safefile.ReadFile(p.path, 8<<20)
	if err != nil {
		if _, serr := os.Lstat(p.path); errors.Is(serr, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("console: proposals: %w", err)
	}
	var list []Proposal
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("console: %s: %w", p.path, err)
	}
	return list, nil
}

func (p *proposals) save(list []Proposal) error {
	for len(list) > maxProposals {
		i := slices.IndexFunc(list, func(x Proposal) bool { return x.Status != "proposed" })
		if i < 0 {
			i = 0
		}
		list = slices.Delete(list, i, i+1)
	}
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p.path), 0o700); err != nil {
		return err
	}
	return safefile.WriteFile(p.path, data, 0o600)
}

// List returns every proposal, newest first.
func (p *proposals) List() ([]Proposal, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	list, err := p.load()
	slices.Reverse(list)
	return list, err
}

// Add stores a new proposal; an earlier open one for the same view is
// superseded.
func (p *proposals) Add(pr Proposal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	list, err := p.load()
	if err != nil {
		return err
	}
	for i := range list {
		if list[i].Camera == pr.Camera && list[i].Preset == pr.Preset && list[i].Status == "proposed" {
			list[i].Status = "superseded"
		}
	}
	return p.save(append(list, pr))
}

// Update changes one proposal through f (under the lock).
func (p *proposals) Update(id string, f func(*Proposal) error) (Proposal, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	list, err := p.load()
	if err != nil {
		return Proposal{}, err
	}
	i := slices.IndexFunc(list, func(x Proposal) bool { return x.ID == id })
	if i < 0 {
		return Proposal{}, fmt.Errorf("no proposal %q", id)
	}
	if err := f(&list[i]); err != nil {
		return list[i], err
	}
	return list[i], p.save(list)
}
