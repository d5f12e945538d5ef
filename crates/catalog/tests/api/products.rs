use caravan_proto::{
    catalog::v1::{
        ActivateProductRequest, BatchGetProductsRequest, Category, CreateProductRequest, GetProductRequest, Product,
        RetireProductRequest, UpdateProductRequest, product::State,
    },
    r#type::v1::{LocalizedText, Money},
};
use caravan_testkit::violated_fields;
use prost_types::FieldMask;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{TestApp, spawn_app};

fn walnuts() -> Product {
    Product {
        country: "countries/UZ".into(),
        category: Category::Food.into(),
        title: Some(LocalizedText {
            zh_cn: "乌兹别克斯坦核桃".into(),
            en: "Uzbek walnuts".into(),
            ..Default::default()
        }),
        description: Some(LocalizedText {
            zh_cn: "费尔干纳谷地的核桃".into(),
            en: "Walnuts from the Fergana valley".into(),
            ..Default::default()
        }),
        list_price: Some(Money { currency_code: "CNY".into(), minor_units: 3990 }),
        unit: "500 g bag".into(),
        image_urls: vec!["https://images.caravan.example/uz/walnuts.jpg".into()],
        tags: vec!["nuts".into(), "uzbekistan".into()],
        ..Default::default()
    }
}

async fn create(app: &mut TestApp, id: &str, product: Product) -> Result<Product, tonic::Status> {
    app.client
        .create_product(CreateProductRequest {
            product: Some(product),
            product_id: id.into(),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn a_created_product_is_a_draft_that_reads_back() {
    let mut app = spawn_app().await;
    let created = create(&mut app, "uz-walnuts", walnuts()).await.unwrap();
    assert_eq!(created.name, "products/uz-walnuts");
    assert_eq!(created.state(), State::Draft);
    assert!(!created.etag.is_empty());
    let read = app.client.get_product(GetProductRequest { name: created.name.clone() }).await.unwrap().into_inner();
    assert_eq!(read, created);
    assert_eq!(read.title.unwrap().zh_cn, "乌兹别克斯坦核桃");

    let generated = create(&mut app, "", walnuts()).await.unwrap();
    assert!(generated.name.starts_with("products/p"), "{}", generated.name);

    let status = create(&mut app, "uz-walnuts", walnuts()).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    let status = app.client.get_product(GetProductRequest { name: "products/nothing-here".into() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn a_create_repeated_with_its_request_id_makes_one_product() {
    let mut app = spawn_app().await;
    let request =
        CreateProductRequest { product: Some(walnuts()), product_id: String::new(), request_id: "r-1".into() };
    let first = app.client.create_product(request.clone()).await.unwrap().into_inner();
    let again = app.client.create_product(request).await.unwrap().into_inner();
    assert_eq!(again, first, "the same generated product, not a second one");
}

#[tokio::test]
async fn every_invalid_field_is_reported_at_once() {
    let app = spawn_app().await;
    let check = |product: Product, id: &str, expected: &[&str]| {
        let mut client = app.client.clone();
        let expected: Vec<String> = expected.iter().map(|e| (*e).to_owned()).collect();
        let id = id.to_owned();
        async move {
            let status = client
                .create_product(CreateProductRequest {
                    product: Some(product),
                    product_id: id,
                    request_id: String::new(),
                })
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument);
            assert_eq!(violated_fields(&status), expected);
        }
    };
    check(
        Product::default(),
        "Bad Id",
        &[
            "product_id",
            "product.country",
            "product.category",
            "product.title.zh_cn",
            "product.title.en",
            "product.description.zh_cn",
            "product.description.en",
            "product.list_price",
            "product.unit",
        ],
    )
    .await;
    let mut bad = walnuts();
    bad.country = "countries/ZZ".into();
    bad.list_price = Some(Money { currency_code: "YUAN".into(), minor_units: -5 });
    bad.image_urls = vec!["http://insecure.example/a.jpg".into()];
    bad.tags = vec!["Nuts".into()];
    check(
        bad,
        "ok-id",
        &[
            "product.country",
            "product.list_price.currency_code",
            "product.list_price.minor_units",
            "product.image_urls[0]",
            "product.tags[0]",
        ],
    )
    .await;
    let mut bad = walnuts();
    bad.category = 42;
    bad.title.as_mut().unwrap().en = "x".repeat(201);
    check(bad, "ok-id", &["product.category", "product.title.en"]).await;
}

#[tokio::test]
async fn batch_get_keeps_the_order_asked_and_reports_what_is_missing() {
    let mut app = spawn_app().await;
    for id in ["p-aaa", "p-bbb"] {
        create(&mut app, id, walnuts()).await.unwrap();
    }
    let names = ["products/p-bbb", "products/p-zzz", "products/p-aaa", "products/p-bbb"].map(String::from).to_vec();
    let got = app.client.batch_get_products(BatchGetProductsRequest { names }).await.unwrap().into_inner();
    let found: Vec<_> = got.products.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(found, ["products/p-bbb", "products/p-aaa", "products/p-bbb"]);
    assert_eq!(got.missing, ["products/p-zzz"]);

    let too_many = (0..1001).map(|i| format!("products/p-{i:04}")).collect();
    let status = app.client.batch_get_products(BatchGetProductsRequest { names: too_many }).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["names"]);
    let status =
        app.client.batch_get_products(BatchGetProductsRequest { names: vec!["p-aaa".into()] }).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["names[0]"]);
}

#[tokio::test]
async fn update_changes_only_the_masked_fields_and_respects_the_etag() {
    let mut app = spawn_app().await;
    let created = create(&mut app, "uz-walnuts", walnuts()).await.unwrap();
    let mask = |paths: &[&str]| Some(FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() });

    let mut change = walnuts();
    change.name = created.name.clone();
    change.etag = created.etag.clone();
    change.unit = "1 kg bag".into();
    change.list_price = Some(Money { currency_code: "CNY".into(), minor_units: 6990 });
    change.tags = vec!["changed-but-not-masked".into()];
    let updated = app
        .client
        .update_product(UpdateProductRequest {
            product: Some(change.clone()),
            update_mask: mask(&["unit", "list_price"]),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.unit, "1 kg bag");
    assert_eq!(updated.list_price.as_ref().unwrap().minor_units, 6990);
    assert_eq!(updated.tags, created.tags, "unmasked fields keep their values");
    assert_ne!(updated.etag, created.etag);

    // The old etag is stale now.
    let status = app
        .client
        .update_product(UpdateProductRequest {
            product: Some(change.clone()),
            update_mask: mask(&["unit"]),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(status.get_error_details().error_info().unwrap().reason, "ETAG_MISMATCH");

    change.etag = updated.etag.clone();
    for (paths, field) in [
        (&["state"][..], "update_mask.paths[0]"),
        (&["unit", "colour"][..], "update_mask.paths[1]"),
        (&["etag"][..], "update_mask.paths[0]"),
    ] {
        let status = app
            .client
            .update_product(UpdateProductRequest {
                product: Some(change.clone()),
                update_mask: mask(paths),
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{paths:?}");
        assert_eq!(violated_fields(&status), [field], "{paths:?}");
    }
    // A masked field must still be valid.
    change.unit = String::new();
    let status = app
        .client
        .update_product(UpdateProductRequest {
            product: Some(change),
            update_mask: mask(&["unit"]),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["product.unit"]);
}

#[tokio::test]
async fn state_moves_only_forward_through_activate_and_retire() {
    let mut app = spawn_app().await;
    let created = create(&mut app, "pk-salt-lamp", walnuts()).await.unwrap();
    let activate = |etag: &str| ActivateProductRequest {
        name: created.name.clone(),
        etag: etag.into(),
        request_id: String::new(),
    };

    let status = app.client.activate_product(activate("\"v999\"")).await.unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "a stale etag changes nothing");
    let active = app.client.activate_product(activate(&created.etag)).await.unwrap().into_inner();
    assert_eq!(active.state(), State::Active);
    let again = app.client.activate_product(activate("")).await.unwrap().into_inner();
    assert_eq!(again, active, "activating an active product is a no-op");

    let retired = app
        .client
        .retire_product(RetireProductRequest {
            name: created.name.clone(),
            etag: String::new(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retired.state(), State::Retired);
    let status = app.client.activate_product(activate("")).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(status.get_error_details().error_info().unwrap().reason, "PRODUCT_RETIRED");
}

fn product(country: &str, category: Category, zh: &str, en: &str) -> Product {
    let mut p = walnuts();
    p.country = format!("countries/{country}");
    p.category = category.into();
    p.title = Some(LocalizedText { zh_cn: zh.into(), en: en.into(), ru: format!("{en} (ru)"), ..Default::default() });
    p
}

async fn list_all(app: &TestApp, request: caravan_proto::catalog::v1::ListProductsRequest) -> Vec<String> {
    let mut client = app.client.clone();
    let mut request = request;
    let mut names = Vec::new();
    loop {
        let page = client.list_products(request.clone()).await.unwrap().into_inner();
        assert!(page.products.len() as i32 <= request.page_size.max(1));
        names.extend(page.products.into_iter().map(|p| p.name));
        if page.next_page_token.is_empty() {
            return names;
        }
        request.page_token = page.next_page_token;
    }
}

#[tokio::test]
async fn list_filters_and_pages_in_a_stable_order() {
    use caravan_proto::catalog::v1::ListProductsRequest;

    let mut app = spawn_app().await;
    let items = [
        ("uz-walnuts", "UZ", Category::Food, "核桃", "Walnuts"),
        ("uz-raisins", "UZ", Category::Food, "葡萄干", "Golden raisins"),
        ("uz-biscuits", "UZ", Category::Confectionery, "饼干", "Tea biscuits"),
        ("pk-salt-lamp", "PK", Category::HomeDecor, "喜马拉雅盐灯", "Himalayan salt lamp"),
        ("pk-rice", "PK", Category::Food, "巴斯马蒂大米", "Basmati rice"),
        ("pk-woodcraft", "PK", Category::Handicraft, "木雕", "Walnut wood carving"),
        ("ru-honey", "RU", Category::Health, "蜂蜜", "Altai honey"),
    ];
    for (id, country, category, zh, en) in items {
        create(&mut app, id, product(country, category, zh, en)).await.unwrap();
    }
    app.client
        .activate_product(ActivateProductRequest {
            name: "products/pk-rice".into(),
            etag: String::new(),
            request_id: String::new(),
        })
        .await
        .unwrap();

    let mut all: Vec<String> = items.iter().map(|(id, ..)| format!("products/{id}")).collect();
    all.sort();
    assert_eq!(list_all(&app, ListProductsRequest { page_size: 3, ..Default::default() }).await, all);

    let names = |ids: &[&str]| ids.iter().map(|id| format!("products/{id}")).collect::<Vec<_>>();
    let by = |request: ListProductsRequest| list_all(&app, ListProductsRequest { page_size: 2, ..request });
    assert_eq!(
        by(ListProductsRequest { country: "countries/PK".into(), ..Default::default() }).await,
        names(&["pk-rice", "pk-salt-lamp", "pk-woodcraft"])
    );
    assert_eq!(
        by(ListProductsRequest { category: Category::Food.into(), ..Default::default() }).await,
        names(&["pk-rice", "uz-raisins", "uz-walnuts"])
    );
    assert_eq!(
        by(ListProductsRequest { state: State::Active.into(), ..Default::default() }).await,
        names(&["pk-rice"])
    );
    // Text in any locale; Latin case-insensitive; wildcards are literal.
    assert_eq!(
        by(ListProductsRequest { query: "WALNUT".into(), ..Default::default() }).await,
        names(&["pk-woodcraft", "uz-walnuts"])
    );
    assert_eq!(by(ListProductsRequest { query: "盐灯".into(), ..Default::default() }).await, names(&["pk-salt-lamp"]));
    assert_eq!(
        by(ListProductsRequest { query: "honey (RU)".into(), ..Default::default() }).await,
        names(&["ru-honey"])
    );
    assert!(by(ListProductsRequest { query: "%".into(), ..Default::default() }).await.is_empty());
    assert_eq!(
        by(ListProductsRequest {
            country: "countries/UZ".into(),
            category: Category::Food.into(),
            ..Default::default()
        })
        .await,
        names(&["uz-raisins", "uz-walnuts"])
    );

    // A token belongs to its filters.
    let first = app
        .client
        .list_products(ListProductsRequest { page_size: 1, country: "countries/UZ".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let status = app
        .client
        .list_products(ListProductsRequest {
            page_size: 1,
            country: "countries/PK".into(),
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);
    let status = app
        .client
        .list_products(ListProductsRequest {
            page_size: -1,
            country: "PK".into(),
            category: 99,
            state: 9,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_size", "country", "category", "state"]);
}

#[tokio::test]
async fn paging_while_others_insert_repeats_nothing_and_skips_nothing_that_existed() {
    use caravan_proto::catalog::v1::ListProductsRequest;

    let mut app = spawn_app().await;
    let before: Vec<String> = (0..20).map(|i| format!("p-{:03}", i * 2)).collect();
    for id in &before {
        create(&mut app, id, walnuts()).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut request = ListProductsRequest { page_size: 3, ..Default::default() };
    let mut inserted = 0;
    loop {
        let page = app.client.list_products(request.clone()).await.unwrap().into_inner();
        seen.extend(page.products.into_iter().map(|p| p.name));
        // Others insert between our pages, before and after where we are.
        create(&mut app, &format!("p-{:03}", inserted * 2 + 1), walnuts()).await.unwrap();
        inserted += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no product twice");
    for id in &before {
        assert!(seen.contains(&format!("products/{id}")), "{id} skipped");
    }
}

#[tokio::test]
async fn import_upserts_by_id_all_or_nothing_and_a_rerun_changes_nothing() {
    use caravan_proto::catalog::v1::{ImportProductsRequest, ImportProductsResponse};

    let app = spawn_app().await;
    let mut reader = app.client.clone();
    let named = |id: &str| Product { name: format!("products/{id}"), ..walnuts() };
    let batch = vec![named("uz-walnuts"), named("uz-raisins"), named("uz-biscuits")];
    let import = |products: Vec<Product>| {
        let mut client = app.client.clone();
        async move {
            client
                .import_products(ImportProductsRequest {
                    products,
                    initial_state: State::Active.into(),
                    request_id: String::new(),
                })
                .await
        }
    };
    let counts = |r: ImportProductsResponse| (r.created_count, r.updated_count, r.unchanged_count);
    assert_eq!(counts(import(batch.clone()).await.unwrap().into_inner()), (3, 0, 0));
    assert_eq!(counts(import(batch.clone()).await.unwrap().into_inner()), (0, 0, 3), "a re-run changes nothing");
    let got = reader.get_product(GetProductRequest { name: "products/uz-raisins".into() }).await.unwrap().into_inner();
    assert_eq!(got.state(), State::Active);

    let mut changed = batch.clone();
    changed[1].unit = "1 kg".into();
    assert_eq!(counts(import(changed).await.unwrap().into_inner()), (0, 1, 2));

    // One bad row: nothing is written, every problem is named by row.
    let mut bad = vec![named("pk-rice"), named("pk-salt-lamp"), named("pk-rice")];
    bad[1].list_price = None;
    let status = import(bad).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["products[1].list_price", "products[2].name"]);
    let status = reader.get_product(GetProductRequest { name: "products/pk-rice".into() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "no half import");
}

#[tokio::test]
async fn another_replicas_change_shows_within_the_cache_ttl_and_writes_read_fresh() {
    use caravan_proto::catalog::v1::catalog_service_client::CatalogServiceClient;
    use caravan_testkit::{KeyedChannel, eventually, service_config};

    let mut a = spawn_app().await;
    let created = create(&mut a, "uz-walnuts", walnuts()).await.unwrap();
    // A second replica on the same database.
    let config = service_config(caravan_platform::config::ServiceKind::Catalog, a.server.database().config(), &[]);
    let replica = caravan_catalog::Application::build(config).await.unwrap();
    let b_addr = replica.local_addr();
    let token = caravan_platform::CancellationToken::new();
    tokio::spawn(replica.run_until_stopped(token.clone()));
    let mut b = CatalogServiceClient::new(KeyedChannel::new(b_addr, Some(caravan_testkit::Caller::Operator)));

    // A caches the product; B changes it.
    a.client.get_product(GetProductRequest { name: created.name.clone() }).await.unwrap();
    let mut change = walnuts();
    change.name = created.name.clone();
    change.unit = "1 kg bag".into();
    let mask = Some(FieldMask { paths: vec!["unit".into()] });
    let changed = b
        .update_product(UpdateProductRequest {
            product: Some(change.clone()),
            update_mask: mask.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();

    // B caches its own version…
    b.get_product(GetProductRequest { name: created.name.clone() }).await.unwrap();
    // …a write through A reads fresh: B's etag is accepted at once, though A
    // had cached the version before.
    change.etag = changed.etag.clone();
    change.unit = "2 kg bag".into();
    a.client
        .update_product(UpdateProductRequest { product: Some(change), update_mask: mask, request_id: String::new() })
        .await
        .unwrap();
    // And B, which cached the version before, sees A's write within the TTL.
    let seen = eventually(caravan_catalog::store::PRODUCT_CACHE_TTL * 3, || {
        let mut b = b.clone();
        let name = created.name.clone();
        async move { b.get_product(GetProductRequest { name }).await.unwrap().into_inner().unit == "2 kg bag" }
    })
    .await;
    assert!(seen, "another replica's change becomes visible within the cache TTL");
    token.cancel();
}
