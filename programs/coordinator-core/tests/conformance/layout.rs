//! Pins the `#[repr(C)]` account layout (sizes and offsets, sized for 256 clients) that the Solana program will
//! use, and prints it (`cargo test --test conformance layout -- --nocapture`). Every struct has explicit padding only: its
//! size equals the sum of its field sizes.

use core::mem::{align_of, offset_of, size_of};

use psyche_coordinator_core::account::{
    AccountCheckpoint, AccountClient, AccountConfig, AccountEpochState, AccountLrSchedule, AccountModel, AccountRound,
    AccountWitness, CoordinatorAccount,
};
use psyche_coordinator_core::bloom::Bloom;

/// Prints `name size align` and each `field offset size`, and checks that the fields tile the struct exactly
/// (each field starts where the previous one ended, and the last one ends at the struct's size).
macro_rules! layout {
    ($t:ty, $expected:expr, [$($f:ident),+ $(,)?]) => {{
        let fields: Vec<(&str, usize, usize)> = vec![$((
            stringify!($f),
            offset_of!($t, $f),
            {
                fn size_of_field<T>(_: fn(&$t) -> &T) -> usize { size_of::<T>() }
                size_of_field(|s: &$t| &s.$f)
            },
        )),+];
        println!("{} size {} align {}", stringify!($t), size_of::<$t>(), align_of::<$t>());
        let mut end = 0;
        for (name, off, size) in &fields {
            println!("  {name:<28} offset {off:>6} size {size:>6}");
            assert_eq!(*off, end, "{}.{name}: implicit padding before it", stringify!($t));
            end = off + size;
        }
        assert_eq!(end, size_of::<$t>(), "{}: implicit tail padding", stringify!($t));
        assert_eq!(size_of::<$t>(), $expected, "{}: size changed (a layout change needs a new version)", stringify!($t));
    }};
}

#[test]
fn account_layout_is_pinned() {
    layout!(Bloom, 200, [bits, keys, num_bits, _pad]);
    layout!(AccountClient, 40, [id, exited_height, state, _pad]);
    layout!(AccountWitness, 440, [participant_bloom, broadcast_bloom, broadcast_merkle, index, _pad]);
    layout!(AccountRound, 14_112, [witnesses, data_index, random_seed, height, clients_len, witnesses_len, _pad]);
    layout!(
        AccountEpochState,
        77_096,
        [
            rounds,
            clients,
            exited_clients,
            warmup_witnesses,
            start_timestamp,
            clients_len,
            exited_len,
            warmup_witnesses_len,
            rounds_head,
            start_step,
            last_step,
            first_round,
            cold_start_epoch,
            _pad,
        ]
    );
    layout!(AccountConfig, 120, [fields]);
    layout!(AccountCheckpoint, 144, [name, detail, kind, name_len, has_detail, detail_len, _pad]);
    layout!(AccountLrSchedule, 80, [lrs, steps, kind, _pad]);
    layout!(AccountModel, 240, [lr_schedule, checkpoint, max_seq_len, cold_start_warmup_steps]);
    layout!(
        CoordinatorAccount,
        85_736,
        [
            version,
            run_id,
            run_state,
            run_id_len,
            pending_pause,
            _pad0,
            run_state_start,
            epoch_start_data_index,
            epoch,
            step,
            last_round_seed,
            config,
            model,
            pending,
            pending_len,
            _pad1,
            epoch_state,
        ]
    );
    // By hand: 8 + 32 + 8 + 8 + 8 + 8 + 8 + 120 (config) + 240 (model) + 256·32 (pending) + 8 + 77 096 (epoch).
    assert_eq!(8 + 32 + 8 + 8 + 8 + 8 + 8 + 120 + 240 + 256 * 32 + 8 + 77_096, 85_736);
    assert_eq!(align_of::<CoordinatorAccount>(), 8);
}
