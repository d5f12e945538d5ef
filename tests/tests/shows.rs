//! Shows across services: line-ups checked with catalog and allocated in
//! inventory, bookings without conflicts, the lifecycle by the clock.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod common;

use std::time::Duration;

use caravan_platform::{
    config::ServiceKind,
    time::{ManualClock, Micros},
};
use caravan_proto::{
    inventory::v1::{GetAllocationRequest, GetStockRequest, allocation::State as AllocationState},
    scheduling::v1::{
        CancelShowRequest, Channel, CreateChannelRequest, CreateHostRequest, CreateShowRequest, EndShowRequest,
        GetShowRequest, Host, ListShowsRequest, Show, StartShowRequest,
        scheduling_service_client::SchedulingServiceClient, show::State,
    },
};
use caravan_testkit::{Caller, KeyedChannel, eventually, violated_fields};
use common::{
    RunningSuite,
    festival::{Festival, Inventory, Scheduling, at, create, festival, show, uzbek_products},
};
use futures::future::join_all;
use tonic::Code;
use tonic_types::StatusExt as _;

async fn allocated(inventory: &mut Inventory, product: &str) -> i64 {
    inventory
        .get_stock(GetStockRequest { name: format!("stockLevels/{product}") })
        .await
        .unwrap()
        .into_inner()
        .allocated
}

async fn state_of(scheduling: &Scheduling, id: &str) -> i32 {
    let mut client = scheduling.clone();
    client.get_show(GetShowRequest { name: format!("shows/{id}") }).await.unwrap().into_inner().state
}

#[tokio::test]
async fn a_show_allocates_its_line_up_goes_live_and_ends_by_the_clock() {
    let Festival { running, clock, mut scheduling, mut inventory } = festival().await;
    let products = uzbek_products();
    let created = scheduling
        .create_show(create("uz-on-hema", show("olimkhonov", 20.0, 21.0, &[(&products[0], 30), (&products[1], 20)])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.state, State::Scheduled as i32);
    assert_eq!(created.offers.len(), 2);
    assert_eq!(allocated(&mut inventory, &products[0]).await, 30);
    assert_eq!(allocated(&mut inventory, &products[1]).await, 20);

    // The clock reaches the start: the worker puts it live.
    clock.set(Micros(at(20.0)));
    let live = eventually(Duration::from_secs(10), || async {
        state_of(&scheduling, "uz-on-hema").await == State::Live as i32
    })
    .await;
    assert!(live, "the show went live at its start time");

    // And the end: ENDED, and the unsold allocation goes back.
    clock.set(Micros(at(21.0)));
    let ended = eventually(Duration::from_secs(10), || async {
        state_of(&scheduling, "uz-on-hema").await == State::Ended as i32
    })
    .await;
    assert!(ended, "the show ended at its end time");
    let mut probe = inventory.clone();
    let returned = eventually(Duration::from_secs(10), || {
        let mut probe = probe.clone();
        async move {
            probe
                .get_allocation(GetAllocationRequest { name: "allocations/uz-on-hema".into() })
                .await
                .is_ok_and(|a| a.into_inner().state == AllocationState::Closed as i32)
        }
    })
    .await;
    assert!(returned, "the allocation was returned");
    assert_eq!(allocated(&mut probe, &products[0]).await, 0);
    let ended = scheduling.get_show(GetShowRequest { name: created.name }).await.unwrap().into_inner();
    assert!(ended.live_time.is_some() && ended.close_time.is_some());
    assert!(ended.version > created.version);
    running.token.cancel();
    running.suite.wait().await.unwrap();
}

/// What scheduling's gauges read once its sampler has seen `want`.
async fn gauges_reach(want: (i64, i64)) -> bool {
    use caravan_scheduling::metrics::{shows_live, shows_starting};
    eventually(Duration::from_secs(10), || async { (shows_starting().get(), shows_live().get()) == want }).await
}

#[tokio::test]
async fn scheduling_counts_the_shows_about_to_start_for_the_autoscalers() {
    let Festival { running, clock, mut scheduling, .. } = festival().await;
    let products = uzbek_products();
    let offer = [(products[0].as_str(), 1)];
    let minute = 1.0 / 60.0;
    // At 9:00 with the default lead of 15 minutes: the shows at 9:05 and
    // 9:12 are about to start, the one at 11:00 is not.
    for (id, from, to) in
        [("soon", 9.0 + 5.0 * minute, 9.0 + 10.0 * minute), ("next", 9.0 + 12.0 * minute, 9.5), ("later", 11.0, 12.0)]
    {
        scheduling.create_show(create(id, show("olimkhonov", from, to, &offer))).await.unwrap();
    }
    assert!(gauges_reach((2, 0)).await, "two shows start within 15 minutes, none is live");
    // 9:07: the first is on air, the second still to come.
    clock.set(Micros(at(9.0 + 7.0 * minute)));
    assert!(gauges_reach((1, 1)).await, "one about to start, one live");
    // 10:50: the 9:00 shows are over; the 11:00 one is about to start.
    clock.set(Micros(at(10.0 + 50.0 / 60.0)));
    assert!(gauges_reach((1, 0)).await, "the 11:00 show is next");
    running.token.cancel();
    running.suite.wait().await.unwrap();
}

#[tokio::test]
async fn bookings_never_overlap_on_a_channel_or_for_a_host() {
    let Festival { running, mut scheduling, .. } = festival().await;
    scheduling.create_show(create("first", show("olimkhonov", 20.0, 21.0, &[]))).await.unwrap();

    let conflict = |status: &tonic::Status| {
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        let info = status.get_error_details().error_info().cloned().unwrap();
        (info.reason, info.metadata["show"].clone())
    };
    // Same channel, overlapping.
    let status = scheduling.create_show(create("overlap", show("khan", 20.5, 21.5, &[]))).await.unwrap_err();
    assert_eq!(conflict(&status), ("SHOW_CONFLICT".into(), "shows/first".into()));
    // Touching end to start is fine, on both sides.
    scheduling.create_show(create("after", show("khan", 21.0, 22.0, &[]))).await.unwrap();
    scheduling.create_show(create("before", show("khan", 19.0, 20.0, &[]))).await.unwrap();
    // The host cannot be in two shows at once, even on another channel.
    scheduling
        .create_channel(CreateChannelRequest {
            channel: Some(Channel {
                platform: "douyin".into(),
                display_name: "抖音".into(),
                partner: "douyin".into(),
                ..Default::default()
            }),
            channel_id: "douyin-sco".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let mut elsewhere = show("olimkhonov", 20.25, 20.75, &[]);
    elsewhere.channel = "channels/douyin-sco".into();
    let status = scheduling.create_show(create("elsewhere", elsewhere)).await.unwrap_err();
    assert_eq!(conflict(&status).1, "shows/first");
    // Inside the campaign's days only (the last day is inclusive, Shanghai time).
    let last_evening = 28.0 * 24.0 + 20.0;
    scheduling
        .create_show(create("last-day", show("olimkhonov", last_evening, last_evening + 1.0, &[])))
        .await
        .unwrap();
    let status = scheduling
        .create_show(create("too-late", show("olimkhonov", 29.0 * 24.0 + 1.0, 29.0 * 24.0 + 2.0, &[])))
        .await
        .unwrap_err();
    assert_eq!(status.get_error_details().error_info().unwrap().reason, "OUTSIDE_CAMPAIGN");

    // A cancelled show frees its slot.
    scheduling
        .cancel_show(CancelShowRequest {
            name: "shows/first".into(),
            reason: "host ill".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    scheduling.create_show(create("replacement", show("khan", 20.0, 21.0, &[]))).await.unwrap();
    running.token.cancel();
    running.suite.wait().await.unwrap();
}

#[tokio::test]
async fn of_conflicting_bookings_made_at_once_exactly_one_wins() {
    let Festival { running, scheduling, .. } = festival().await;
    let calls = (0..12).map(|i| {
        let mut client = scheduling.clone();
        let host = if i % 2 == 0 { "olimkhonov" } else { "khan" };
        async move {
            client.create_show(create(&format!("rival-{i}"), show(host, 20.0 + f64::from(i) * 0.05, 21.0, &[]))).await
        }
    });
    let results = join_all(calls).await;
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).map(|r| r.get_ref().name.clone()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for status in results.iter().filter_map(|r| r.as_ref().err()) {
        let info = status.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.reason, "SHOW_CONFLICT", "{status:?}");
        assert_eq!(&info.metadata["show"], &winners[0]);
    }
    let listed = scheduling
        .clone()
        .list_shows(ListShowsRequest { channel: "channels/hema-sco".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .shows;
    assert_eq!(listed.len(), 1);
    running.token.cancel();
    running.suite.wait().await.unwrap();
}

#[tokio::test]
async fn a_line_up_that_cannot_be_allocated_fails_whole_and_leaves_nothing() {
    let Festival { running, mut scheduling, mut inventory, .. } = festival().await;
    let products = uzbek_products();
    // The second product has 100 units; 150 cannot be allocated.
    let status = scheduling
        .create_show(create("greedy", show("olimkhonov", 20.0, 21.0, &[(&products[0], 30), (&products[1], 150)])))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let info = status.get_error_details().error_info().cloned().unwrap();
    assert_eq!(
        (info.reason.as_str(), info.metadata["product"].as_str()),
        ("INSUFFICIENT_STOCK", format!("products/{}", products[1]).as_str())
    );
    assert_eq!(
        scheduling.get_show(GetShowRequest { name: "shows/greedy".into() }).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(allocated(&mut inventory, &products[0]).await, 0, "nothing stays allocated");
    assert_eq!(allocated(&mut inventory, &products[1]).await, 0);

    // A product the catalog does not have is named too.
    let status = scheduling
        .create_show(create("ghost", show("olimkhonov", 20.0, 21.0, &[(&products[0], 1), ("uz-no-such-thing", 1)])))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["show.offers[1].product"]);
    // The slot is still free: the refused bookings held nothing.
    scheduling.create_show(create("modest", show("olimkhonov", 20.0, 21.0, &[(&products[0], 30)]))).await.unwrap();
    running.token.cancel();
    running.suite.wait().await.unwrap();
}

#[tokio::test]
async fn operators_start_end_and_cancel_by_hand_once() {
    let Festival { running, mut scheduling, mut inventory, .. } = festival().await;
    let products = uzbek_products();
    scheduling.create_show(create("by-hand", show("olimkhonov", 20.0, 21.0, &[(&products[2], 10)]))).await.unwrap();
    scheduling.create_show(create("called-off", show("khan", 22.0, 23.0, &[(&products[2], 5)]))).await.unwrap();
    assert_eq!(allocated(&mut inventory, &products[2]).await, 15);

    let start = || StartShowRequest { name: "shows/by-hand".into(), request_id: String::new() };
    for _ in 0..2 {
        assert_eq!(scheduling.start_show(start()).await.unwrap().into_inner().state, State::Live as i32);
    }
    let status = scheduling
        .cancel_show(CancelShowRequest {
            name: "shows/by-hand".into(),
            reason: String::new(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.get_error_details().error_info().unwrap().reason, "SHOW_STATE");
    let ended =
        scheduling.end_show(EndShowRequest { name: "shows/by-hand".into(), request_id: String::new() }).await.unwrap();
    assert_eq!(ended.into_inner().state, State::Ended as i32);
    let cancelled = scheduling
        .cancel_show(CancelShowRequest {
            name: "shows/called-off".into(),
            reason: "flight cancelled".into(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.state, State::Cancelled as i32);
    assert_eq!(allocated(&mut inventory, &products[2]).await, 0, "both allocations went back");
    let status = scheduling
        .start_show(StartShowRequest { name: "shows/called-off".into(), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    running.token.cancel();
    running.suite.wait().await.unwrap();
}

#[tokio::test]
async fn the_host_pins_line_up_products_while_live_and_orders_read_live_offers() {
    use caravan_proto::scheduling::v1::{GetLiveOffersRequest, PinProductRequest};

    let Festival { running, mut scheduling, .. } = festival().await;
    let products = uzbek_products();
    scheduling
        .create_show(create("uz-on-hema", show("olimkhonov", 20.0, 21.0, &[(&products[0], 10), (&products[1], 10)])))
        .await
        .unwrap();
    let pin = |product: &str| PinProductRequest {
        name: "shows/uz-on-hema".into(),
        product: if product.is_empty() { String::new() } else { format!("products/{product}") },
        request_id: String::new(),
    };
    let status = scheduling.pin_product(pin(&products[0])).await.unwrap_err();
    assert_eq!(status.get_error_details().error_info().unwrap().reason, "SHOW_STATE", "not live yet");

    scheduling
        .start_show(StartShowRequest { name: "shows/uz-on-hema".into(), request_id: String::new() })
        .await
        .unwrap();
    let pinned = scheduling.pin_product(pin(&products[1])).await.unwrap().into_inner();
    assert_eq!(pinned.pinned_product, format!("products/{}", products[1]));
    let status = scheduling.pin_product(pin(&products[5])).await.unwrap_err();
    assert_eq!(status.get_error_details().error_info().unwrap().reason, "NOT_ON_LINE_UP");
    let unpinned = scheduling.pin_product(pin("")).await.unwrap().into_inner();
    assert!(unpinned.pinned_product.is_empty());
    assert!(unpinned.version > pinned.version);

    // The order path's read, as the orders service makes it.
    let mut orders = SchedulingServiceClient::new(KeyedChannel::new(
        running.suite.addr(ServiceKind::Scheduling),
        Some(Caller::Service(ServiceKind::Orders)),
    ));
    let live = orders
        .get_live_offers(GetLiveOffersRequest {
            show: "shows/uz-on-hema".into(),
            products: vec![format!("products/{}", products[0]), format!("products/{}", products[7])],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(live.state, State::Live as i32);
    assert_eq!(live.offers.len(), 1);
    assert_eq!(live.offers[0].show_price.as_ref().unwrap().minor_units, 2990);
    assert_eq!(live.not_offered, [format!("products/{}", products[7])]);

    // Within a second of the end, the read says so.
    scheduling.end_show(EndShowRequest { name: "shows/uz-on-hema".into(), request_id: String::new() }).await.unwrap();
    let ended = eventually(Duration::from_secs(3), || {
        let mut orders = orders.clone();
        async move {
            orders
                .get_live_offers(GetLiveOffersRequest { show: "shows/uz-on-hema".into(), products: vec![] })
                .await
                .unwrap()
                .into_inner()
                .state
                == State::Ended as i32
        }
    })
    .await;
    assert!(ended);
    let status = scheduling.pin_product(pin(&products[0])).await.unwrap_err();
    assert_eq!(status.get_error_details().error_info().unwrap().reason, "SHOW_STATE");
    running.token.cancel();
    running.suite.wait().await.unwrap();
}

async fn next(
    stream: &mut tonic::Streaming<caravan_proto::scheduling::v1::WatchShowResponse>,
) -> caravan_proto::scheduling::v1::WatchShowResponse {
    let message = tokio::time::timeout(Duration::from_secs(10), stream.message());
    message.await.expect("a message within 10 s").unwrap().expect("the stream is open")
}

#[tokio::test]
async fn a_show_watch_replays_every_version_after_its_cursor() {
    use caravan_proto::scheduling::v1::{PinProductRequest, WatchShowRequest, watch_show_response::Kind};

    let Festival { running, mut scheduling, .. } = festival().await;
    let products = uzbek_products();
    scheduling
        .create_show(create("uz-on-hema", show("olimkhonov", 20.0, 21.0, &[(&products[0], 10), (&products[1], 10)])))
        .await
        .unwrap();
    let watch = |after_version| WatchShowRequest { name: "shows/uz-on-hema".into(), after_version };
    let mut stream = scheduling.watch_show(watch(0)).await.unwrap().into_inner();
    let snapshot = next(&mut stream).await;
    assert_eq!(snapshot.kind, Kind::Snapshot as i32);
    let first = snapshot.show.unwrap();
    assert_eq!(first.state, State::Scheduled as i32);

    scheduling
        .start_show(StartShowRequest { name: "shows/uz-on-hema".into(), request_id: String::new() })
        .await
        .unwrap();
    for product in [&products[0], &products[1]] {
        scheduling
            .pin_product(PinProductRequest {
                name: "shows/uz-on-hema".into(),
                product: format!("products/{product}"),
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        let change = next(&mut stream).await;
        assert_eq!(change.kind, Kind::Change as i32);
        let show = change.show.unwrap();
        seen.push((show.version, show.state, show.pinned_product));
    }
    let expected = vec![
        (first.version + 1, State::Live as i32, String::new()),
        (first.version + 2, State::Live as i32, format!("products/{}", products[0])),
        (first.version + 3, State::Live as i32, format!("products/{}", products[1])),
    ];
    assert_eq!(seen, expected, "every version, in order, nothing coalesced");
    drop(stream);

    // A reconnect from the snapshot's version replays the same three changes.
    let mut stream = scheduling.watch_show(watch(first.version)).await.unwrap().into_inner();
    let mut replayed = Vec::new();
    for _ in 0..3 {
        let show = next(&mut stream).await.show.unwrap();
        replayed.push((show.version, show.state, show.pinned_product));
    }
    assert_eq!(replayed, expected);

    let status = scheduling.watch_show(watch(first.version + 10)).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["after_version"]);
    let status = scheduling
        .watch_show(WatchShowRequest { name: "shows/no-such-show".into(), after_version: 0 })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    running.token.cancel();
    running.suite.wait().await.unwrap();
}

/// Another scheduling replica on the suite's database and clock; its
/// inventory is `inventory` (a closed port plays one that cannot be reached).
async fn scheduling_replica(
    running: &RunningSuite,
    clock: &ManualClock,
    inventory: std::net::SocketAddr,
) -> caravan_testkit::TestServer {
    let database = running.database(ServiceKind::Scheduling);
    let upstreams =
        [(ServiceKind::Catalog, running.suite.addr(ServiceKind::Catalog)), (ServiceKind::Inventory, inventory)];
    let mut config = caravan_testkit::service_config(ServiceKind::Scheduling, database.config(), &upstreams);
    config.clock = std::sync::Arc::new(clock.clone());
    caravan_testkit::TestServer::start_with::<caravan_scheduling::Scheduling>(config, database).await.unwrap()
}

#[tokio::test]
async fn two_replicas_make_each_transition_and_each_return_once() {
    use caravan_proto::inventory::v1::{ListMovementsRequest, movement::Kind};

    let Festival { running, clock, mut scheduling, mut inventory } = festival().await;
    let _second = scheduling_replica(&running, &clock, running.suite.addr(ServiceKind::Inventory)).await;
    let products = uzbek_products();
    for i in 0..6 {
        let from = 10.0 + f64::from(i);
        scheduling
            .create_show(create(&format!("show-{i}"), show("olimkhonov", from, from + 1.0, &[(&products[0], 5)])))
            .await
            .unwrap();
    }
    assert_eq!(allocated(&mut inventory, &products[0]).await, 30);

    // Past every start and end at once: both replicas' clocks race for them.
    clock.set(Micros(at(17.0)));
    let done = eventually(Duration::from_secs(20), || {
        let mut inventory = inventory.clone();
        let product = products[0].clone();
        async move { allocated(&mut inventory, &product).await == 0 }
    })
    .await;
    assert!(done, "every allocation came back");
    for i in 0..6 {
        let show = scheduling.get_show(GetShowRequest { name: format!("shows/show-{i}") }).await.unwrap().into_inner();
        assert_eq!(show.state, State::Ended as i32);
        assert_eq!(show.version, 3, "created, started once, ended once");
    }
    let movements = inventory
        .list_movements(ListMovementsRequest {
            product: format!("products/{}", products[0]),
            page_size: 1000,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .movements;
    assert_eq!(movements.iter().filter(|m| m.kind == Kind::Return as i32).count(), 6, "each show returned once");
    running.token.cancel();
    running.suite.wait().await.unwrap();
}

#[tokio::test]
async fn a_booking_whose_allocation_was_cut_short_is_re_driven_and_resumed() {
    let Festival { running, clock, mut scheduling, mut inventory } = festival().await;
    let products = uzbek_products();
    // A replica that cannot reach inventory books the show but cannot allocate.
    let closed_port = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
    let cut_off = scheduling_replica(&running, &clock, closed_port).await;
    let mut cut_off = SchedulingServiceClient::new(cut_off.channel());
    let request = CreateShowRequest {
        show: Some(show("olimkhonov", 20.0, 21.0, &[(&products[0], 25)])),
        show_id: String::new(),
        request_id: "book-uz-show".into(),
    };
    let status = cut_off.create_show(request.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(allocated(&mut inventory, &products[0]).await, 0);

    // After the grace, a healthy replica's clock finishes the allocation (the
    // cut-off replica's attempts fail and come due again as time passes).
    clock.advance(Duration::from_secs(31));
    let finished = eventually(Duration::from_secs(20), || {
        let mut inventory = inventory.clone();
        let product = products[0].clone();
        clock.advance(Duration::from_secs(6));
        async move { allocated(&mut inventory, &product).await == 25 }
    })
    .await;
    assert!(finished, "the re-drive allocated the line-up");

    // The operator's retry with the same request id gets the same show.
    let resumed = scheduling.create_show(request).await.unwrap().into_inner();
    assert_eq!(resumed.state, State::Scheduled as i32);
    let listed = scheduling.list_shows(ListShowsRequest::default()).await.unwrap().into_inner().shows;
    assert_eq!(listed.len(), 1, "one show, not two");
    assert_eq!(listed[0].name, resumed.name);
    assert_eq!(allocated(&mut inventory, &products[0]).await, 25);
    running.token.cancel();
    running.suite.wait().await.unwrap();
}

#[tokio::test]
async fn a_line_up_edit_reallocates_and_a_refused_one_changes_nothing() {
    use caravan_proto::scheduling::v1::UpdateShowRequest;

    let Festival { running, mut scheduling, mut inventory, .. } = festival().await;
    let products = uzbek_products();
    let created = scheduling
        .create_show(create("uz-on-hema", show("olimkhonov", 20.0, 21.0, &[(&products[0], 30), (&products[1], 20)])))
        .await
        .unwrap()
        .into_inner();
    scheduling.create_show(create("next", show("khan", 21.0, 22.0, &[]))).await.unwrap();
    let update = |show: Show, paths: &[&str]| UpdateShowRequest {
        show: Some(show),
        update_mask: Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
        request_id: String::new(),
    };
    let line_up = |offers: &[(&str, i64)]| show("olimkhonov", 20.0, 21.0, offers).offers;

    // Drop the second product, lower the first, add a third.
    let mut change = Show { name: created.name.clone(), etag: created.etag.clone(), ..Default::default() };
    change.offers = line_up(&[(&products[0], 10), (&products[2], 15)]);
    let updated = scheduling.update_show(update(change, &["offers"])).await.unwrap().into_inner();
    let offered: Vec<_> = updated.offers.iter().map(|o| (o.product.clone(), o.allocated_quantity)).collect();
    assert_eq!(offered, [(format!("products/{}", products[0]), 10), (format!("products/{}", products[2]), 15)]);
    for (product, expected) in [(&products[0], 10), (&products[1], 0), (&products[2], 15)] {
        assert_eq!(allocated(&mut inventory, product).await, expected, "{product}");
    }

    // More than there is: refused, naming the product; nothing moves.
    let mut greedy = Show { name: created.name.clone(), ..Default::default() };
    greedy.offers = line_up(&[(&products[0], 10), (&products[2], 1000)]);
    let status = scheduling.update_show(update(greedy, &["offers"])).await.unwrap_err();
    let info = status.get_error_details().error_info().cloned().unwrap();
    assert_eq!(info.reason, "INSUFFICIENT_STOCK");
    assert_eq!(info.metadata["product"], format!("products/{}", products[2]));
    let read = scheduling.get_show(GetShowRequest { name: created.name.clone() }).await.unwrap().into_inner();
    assert_eq!(read.offers, updated.offers, "the previous line-up stands");
    assert_eq!(allocated(&mut inventory, &products[2]).await, 15);

    // Moving onto the next show is a conflict; a stale etag is refused.
    let later = show("olimkhonov", 20.5, 21.5, &[]);
    let moved = Show {
        name: created.name.clone(),
        start_time: later.start_time,
        end_time: later.end_time,
        ..Default::default()
    };
    let status = scheduling.update_show(update(moved.clone(), &["start_time", "end_time"])).await.unwrap_err();
    assert_eq!(status.get_error_details().error_info().unwrap().reason, "SHOW_CONFLICT");
    let mut stale = moved;
    stale.etag = created.etag;
    let status = scheduling.update_show(update(stale, &["title"])).await.unwrap_err();
    assert_eq!(status.code(), Code::Aborted);

    // A live show's line-up is fixed.
    scheduling.start_show(StartShowRequest { name: created.name.clone(), request_id: String::new() }).await.unwrap();
    let status = scheduling
        .update_show(update(Show { name: created.name.clone(), ..Default::default() }, &["title"]))
        .await
        .unwrap_err();
    assert_eq!(status.get_error_details().error_info().unwrap().reason, "SHOW_STATE");
    let status = scheduling
        .update_show(update(Show { name: created.name, ..Default::default() }, &["state"]))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["update_mask.paths[0]"]);
    running.token.cancel();
    running.suite.wait().await.unwrap();
}

/// The seed's timetable, as the demo will replay it: the Nianhuo festival on
/// Hema and Douyin, Uzbekistan first with nine specialties, then Pakistan,
/// Cambodia and Russia, one country's envoy after another.
#[tokio::test]
async fn the_seed_timetable_can_be_expressed() {
    let Festival { running, mut scheduling, .. } = festival().await;
    let dataset =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../crates/caravan/data/products.jsonl")).unwrap();
    let of = |country: &str| -> Vec<String> {
        let prefix = format!("\"id\":\"{country}-");
        let mut kinds: Vec<String> = Vec::new();
        let mut ids = Vec::new();
        for line in dataset.lines().filter(|l| l.contains(&prefix)) {
            let id = line.split("\"id\":\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
            let kind = id.split('-').nth(1).unwrap().to_owned();
            if !kinds.contains(&kind) {
                kinds.push(kind);
                ids.push(id);
            }
        }
        ids
    };
    let lines: Vec<String> = ["pk", "kh", "ru"]
        .iter()
        .flat_map(|c| {
            let ids = of(c);
            dataset
                .lines()
                .filter(move |l| ids.iter().any(|id| l.contains(&format!("\"id\":\"{id}\""))))
                .map(str::to_owned)
        })
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), lines.join("\n")).unwrap();
    let catalog = running.suite.addr(ServiceKind::Catalog).to_string();
    caravan::catalog_import::import(file.path(), &catalog, Caller::Operator.key(), 100, true).await.unwrap();

    scheduling
        .create_channel(CreateChannelRequest {
            channel: Some(Channel {
                platform: "douyin".into(),
                display_name: "抖音 上合直播间".into(),
                partner: "douyin".into(),
                ..Default::default()
            }),
            channel_id: "douyin-sco".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    // Nine specialties of Uzbekistan (the festival fixture imported a dozen).
    let specialties: Vec<String> = uzbek_products().into_iter().take(9).collect();
    let mut previous_end = 12.0;
    for (i, (country, host)) in
        [("uz", "olimkhonov"), ("pk", "khan"), ("kh", "sok"), ("ru", "ivanov")].into_iter().enumerate()
    {
        if !["olimkhonov", "khan"].contains(&host) {
            scheduling
                .create_host(CreateHostRequest {
                    host: Some(Host {
                        display_name: host.into(),
                        country: format!("countries/{}", country.to_uppercase()),
                        ..Default::default()
                    }),
                    host_id: host.into(),
                    request_id: String::new(),
                })
                .await
                .unwrap();
        }
        let products: Vec<String> = if country == "uz" { specialties.clone() } else { of(country) };
        let offers: Vec<(&str, i64)> = products.iter().map(|p| (p.as_str(), 0)).collect();
        let mut next = show(host, previous_end, previous_end + 1.0, &offers);
        if i % 2 == 1 {
            next.channel = "channels/douyin-sco".into();
        }
        let created = scheduling.create_show(create(&format!("{country}-show"), next)).await.unwrap().into_inner();
        if country == "uz" {
            assert_eq!(created.offers.len(), 9, "Uzbekistan's show presents nine specialties");
        }
        previous_end += 1.0;
    }
    let timetable = scheduling
        .list_shows(ListShowsRequest { campaign: "campaigns/nianhuo-2022".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .shows;
    let order: Vec<_> = timetable.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(order, ["shows/uz-show", "shows/pk-show", "shows/kh-show", "shows/ru-show"]);
    // Each listed show carries its own line-up.
    assert_eq!(timetable[0].offers.len(), 9);
    for (show, country) in timetable.iter().zip(["uz", "pk", "kh", "ru"]) {
        assert!(!show.offers.is_empty());
        let prefix = format!("products/{country}-");
        assert!(show.offers.iter().all(|o| o.product.starts_with(&prefix)), "{}: {:?}", show.name, show.offers);
    }
    running.token.cancel();
    running.suite.wait().await.unwrap();
}
