//! `caravan catalog import` against a running catalog: rows in, bad rows named
//! by line, a re-run changes nothing.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

use std::process::{Command, Output, Stdio};

use caravan_testkit::{Caller, TestServer};

fn row(id: &str, currency: &str) -> String {
    serde_json::json!({
        "id": id, "country": "UZ", "category": "food",
        "title_zh_cn": "核桃", "title_en": "Walnuts", "title_ru": "Грецкие орехи",
        "description_zh_cn": "费尔干纳谷地的核桃", "description_en": "Walnuts from the Fergana valley",
        "price_currency": currency, "price_minor": 3990, "unit": "500 g",
        "tags": ["nuts"], "image_urls": []
    })
    .to_string()
}

async fn run(file: &std::path::Path, addr: String) -> Output {
    let file = file.to_owned();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_caravan"))
            .args([
                "catalog",
                "import",
                file.to_str().unwrap(),
                "--catalog",
                &addr,
                "--batch",
                "2",
                "--key",
                Caller::Operator.key(),
            ])
            .env_clear()
            .env("CARAVAN_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn rows_are_imported_bad_ones_named_by_line_and_a_rerun_changes_nothing() {
    let catalog = TestServer::start::<caravan_catalog::Catalog>(&[]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("products.jsonl");
    let lines = [
        row("uz-walnuts", "CNY"),
        "{not json".to_owned(),
        row("uz-raisins", "CNY"),
        row("uz-bad", "YUAN"),
        row("uz-biscuits", "CNY"),
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();

    let output = run(&file, catalog.addr().to_string()).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "refused rows make the exit code say so");
    assert!(stdout.contains("created 3, updated 0, unchanged 0, rows refused 2"), "{stdout}\n{stderr}");
    assert!(stderr.contains("line 2:"), "{stderr}");
    assert!(stderr.contains("line 4: list_price.currency_code"), "{stderr}");

    // Fixed file: a re-run creates only what is new and changes nothing else.
    let fixed = [row("uz-walnuts", "CNY"), row("uz-raisins", "CNY"), row("uz-bad", "CNY"), row("uz-biscuits", "CNY")];
    std::fs::write(&file, fixed.join("\n")).unwrap();
    let output = run(&file, catalog.addr().to_string()).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("created 1, updated 0, unchanged 3"));
    let output = run(&file, catalog.addr().to_string()).await;
    assert!(String::from_utf8_lossy(&output.stdout).contains("created 0, updated 0, unchanged 4"));

    // CSV, with `;`-separated lists.
    let csv = dir.path().join("products.csv");
    std::fs::write(
        &csv,
        "id,country,category,title_zh_cn,title_en,title_ru,description_zh_cn,description_en,price_currency,price_minor,unit,tags,image_urls\n\
         pk-rice,PK,food,巴斯马蒂大米,Basmati rice,Рис басмати,旁遮普的大米,Rice from Punjab,CNY,4590,1 kg,rice;pakistan,https://img.example/rice.jpg\n",
    )
    .unwrap();
    let output = run(&csv, catalog.addr().to_string()).await;
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("created 1"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
