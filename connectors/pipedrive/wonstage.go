package pipedrive

// WonStage is the stage every won deal is reported as: its status "won"
// (connectors.WonStageReporter). The connection's trigger.won_stages must
// list it.
func (s *Source) WonStage() string { return "won" }

// LinesNetOfTax implements connectors.NetOfTaxLines: a product of
// tax_method inclusive is read net of its tax (docs/connectors/crm.md,
// "Taxes").
func (s *Source) LinesNetOfTax() bool { return true }
