package bank

import (
	"context"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/projection"
)

// TransferFlagged is recorded by the compliance application for a transfer at or above its threshold.
type TransferFlagged struct {
	TransferID uuid.UUID `json:"transfer_id"`
	From       uuid.UUID `json:"from"`
	To         uuid.UUID `json:"to"`
	Amount     int64     `json:"amount"`
}

// Review is the compliance application's aggregate: one per flagged transfer, with the transfer's ID
// as its name, so that processing the same transfer twice could never open two reviews.
type Review struct {
	aggregate.Base
	Transfer TransferFlagged `json:"transfer"`
}

// Apply changes the review's state for one event.
func (r *Review) Apply(event any) {
	if e, ok := event.(TransferFlagged); ok {
		r.Transfer = e
	}
}

// reviewNamespace names reviews by transfer ID.
var reviewNamespace = uuid.MustParse("2f0b7a52-62a4-4b8e-9a51-0d1c6a1f3b10")

// ReviewID is the ID of the review of a transfer.
func ReviewID(transferID uuid.UUID) uuid.UUID {
	return aggregate.NameID(reviewNamespace, transferID.String())
}

// ComplianceRegistry registers the compliance application's events, and its aggregate, whose topic
// names the type of the streams it starts.
func ComplianceRegistry() *mapper.Registry {
	r := mapper.NewRegistry()
	mapper.Register[TransferFlagged](r, "compliance.TransferFlagged")
	mapper.Register[Review](r, "compliance.Review")
	return r
}

// CompliancePolicy is the compliance application's reaction to the bank's events: it opens a review of
// every transfer of at least threshold. Run as a process application, the review's events and the
// tracking of the bank's notification are recorded atomically.
func CompliancePolicy(threshold int64) projection.Policy {
	return func(ctx context.Context, p *projection.Processing, e aggregate.Event) error {
		sent, ok := e.Data.(TransferSent)
		if !ok || sent.Amount < threshold {
			return nil
		}
		r := &Review{}
		r.ID = ReviewID(sent.TransferID)
		aggregate.Trigger(r, TransferFlagged{TransferID: sent.TransferID, From: e.OriginatorID, To: sent.To, Amount: sent.Amount})
		p.Collect(r)
		return nil
	}
}
