package salesforce

// WonStage is the stage every won deal is reported as
// (connectors.WonStageReporter): the connection's trigger.won_stages must
// list it.
func (s *Source) WonStage() string { return StageWon }
