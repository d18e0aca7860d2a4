//! What a client reads from a gateway (the adversary): a task's result and a query's answer as
//! JSON, turned back into signed messages and checked as the clients check them (enigma-js runs
//! the same code). Nothing may panic, and a check that passes must hold for the parsed fields.
#![no_main]

use enigma_crypto::SignedResult as _;
use enigma_p2p::{
    QueryAnswerMessage, ResultMessage,
    messages::{QueryAnswerView, ResultView},
};
use enigma_types::{CodeHash, ContractAddress, InputsHash, TaskId, result::Expected};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(view) = serde_json::from_slice::<ResultView>(data)
        && let Ok(message) = ResultMessage::try_from(&view)
    {
        let _ = message.signer();
        let expected = Expected {
            task_id: TaskId([1; 32]),
            inputs_hash: InputsHash([2; 32]),
            contract: ContractAddress([3; 32]),
            is_deploy: false,
            value: 0,
            caller: enigma_types::Address([0; 20]),
            code_hash: CodeHash([4; 32]),
        };
        if message.check(&expected).is_ok() {
            assert_eq!(message.task_id, expected.task_id);
            assert_eq!(message.contract, expected.contract);
        }
        let _ = message.standing(view.prev_delta_count, &message.prev_delta_hash);
        assert_eq!(ResultMessage::try_from(&ResultView::from(&message)).as_ref(), Ok(&message));
    }
    if let Ok(view) = serde_json::from_slice::<QueryAnswerView>(data)
        && let Ok(answer) = QueryAnswerMessage::try_from(&view)
    {
        let _ = answer.signer(enigma_types::Address([0; 20]));
    }
});
