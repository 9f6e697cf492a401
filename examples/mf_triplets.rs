//! Matrix factorization from (user, item, rating) triplets with the users' own ids, then
//! predictions and recommendations by those ids.
//!
//! `cargo run --release --no-default-features --example mf_triplets`

use wildsgd::prelude::*;

fn main() -> Result<()> {
    // Users 1000.. like items whose id parity matches theirs; ratings 1-5.
    let (mut users, mut items, mut ratings) = (Vec::new(), Vec::new(), Vec::new());
    for u in 1000u64..1300 {
        for i in (0u64..200).filter(|i| (i * 7 + u * 13) % 5 < 2) {
            users.push(u);
            items.push(i);
            ratings.push(if (u + i) % 2 == 0 { 4.5 } else { 1.5 });
        }
    }
    let data = RatingsDataset::from_triplets(&users, &items, &ratings)?;
    let (train, test) = data.split_holdout(0.1, 1)?;
    let cfg = MfConfig {
        rank: 8,
        epochs: 30,
        ..MfConfig::default()
    };
    let out = wildsgd::mf::fit(&train, Some(&test), &cfg, |_| {})?;
    println!(
        "{} ratings, {} users, {} items: test RMSE {:.3} after {} epochs ({} scheme)",
        train.len(),
        train.n_users(),
        train.n_items(),
        out.done.test_rmse.unwrap_or(f64::NAN),
        out.done.epochs,
        out.done.scheme
    );
    let m: &MfModel = &out.model;
    println!(
        "user 1000, item 2: {:.2} (likes even items)",
        m.predict_ids(1000, 2)
    );
    println!("user 1000, item 3: {:.2}", m.predict_ids(1000, 3));
    if let Some(recs) = m.recommend_for(1001, 5) {
        let list: Vec<String> = recs
            .iter()
            .map(|r| format!("{} ({:.1})", r.item, r.score))
            .collect();
        println!("top 5 for user 1001 (odd): {}", list.join(", "));
    }
    assert!(
        m.recommend_for(99, 5).is_none(),
        "an unknown user has no recommendations"
    );
    println!("unknown user 99: no recommendations (None)");
    Ok(())
}
