//! The festival's catalog dataset: real-shaped specialties of every
//! participating country, made by a seeded generator from curated lists of
//! real specialty kinds, grades and pack sizes, with CNY price bands per
//! category. `caravan catalog dataset` writes it; the repository ships its
//! output (`crates/caravan/data/products.jsonl`) and a test checks that the
//! generator still reproduces it exactly.
//!
//! China hosts the festival and sells nothing in it, so it has no products.

use rand::{Rng as _, SeedableRng as _};

use caravan_proto::catalog::v1::{ImportProductsRequest, catalog_service_client::CatalogServiceClient, product::State};
use indicatif::ProgressBar;

use crate::{catalog_import::Row, channel::Authed};

/// The seed of the shipped file.
pub const SEED: u64 = 2022;

/// (ISO code, name in zh-CN, adjective/name in English, id prefix).
const COUNTRIES: &[(&str, &str, &str)] = &[
    ("AE", "阿联酋", "Emirati"),
    ("AF", "阿富汗", "Afghan"),
    ("AM", "亚美尼亚", "Armenian"),
    ("AZ", "阿塞拜疆", "Azerbaijani"),
    ("BH", "巴林", "Bahraini"),
    ("BY", "白俄罗斯", "Belarusian"),
    ("EG", "埃及", "Egyptian"),
    ("IN", "印度", "Indian"),
    ("IR", "伊朗", "Iranian"),
    ("KG", "吉尔吉斯斯坦", "Kyrgyz"),
    ("KH", "柬埔寨", "Cambodian"),
    ("KW", "科威特", "Kuwaiti"),
    ("KZ", "哈萨克斯坦", "Kazakh"),
    ("LA", "老挝", "Lao"),
    ("LK", "斯里兰卡", "Sri Lankan"),
    ("MM", "缅甸", "Myanmar"),
    ("MN", "蒙古国", "Mongolian"),
    ("MV", "马尔代夫", "Maldivian"),
    ("MY", "马来西亚", "Malaysian"),
    ("NP", "尼泊尔", "Nepali"),
    ("PK", "巴基斯坦", "Pakistani"),
    ("QA", "卡塔尔", "Qatari"),
    ("RU", "俄罗斯", "Russian"),
    ("SA", "沙特阿拉伯", "Saudi"),
    ("TH", "泰国", "Thai"),
    ("TJ", "塔吉克斯坦", "Tajik"),
    ("TR", "土耳其", "Turkish"),
    ("UZ", "乌兹别克斯坦", "Uzbek"),
];

/// Real specialty kinds per country: (country, category, zh-CN, English, id stem).
const KINDS: &[(&str, &str, &str, &str, &str)] = &[
    ("AE", "food", "椰枣", "dates", "dates"),
    ("AE", "confectionery", "骆驼奶巧克力", "camel milk chocolate", "camel-chocolate"),
    ("AE", "beverage", "阿拉伯咖啡", "Arabic coffee", "arabic-coffee"),
    ("AE", "cosmetics", "乌木香水", "oud perfume", "oud-perfume"),
    ("AE", "home_decor", "阿拉伯香炉", "incense burner", "incense-burner"),
    ("AE", "jewelry", "金饰", "gold jewellery", "gold-jewellery"),
    ("AF", "health", "藏红花", "saffron", "saffron"),
    ("AF", "food", "松子", "pine nuts", "pine-nuts"),
    ("AF", "food", "葡萄干", "raisins", "raisins"),
    ("AF", "jewelry", "青金石首饰", "lapis lazuli jewellery", "lapis-jewellery"),
    ("AF", "home_decor", "手织地毯", "hand-knotted rug", "rug"),
    ("AF", "beverage", "石榴汁", "pomegranate juice", "pomegranate-juice"),
    ("AM", "food", "杏干", "dried apricots", "dried-apricots"),
    ("AM", "confectionery", "杏子酱", "apricot jam", "apricot-jam"),
    ("AM", "jewelry", "黑曜石首饰", "obsidian jewellery", "obsidian-jewellery"),
    ("AM", "home_decor", "手织地毯", "hand-woven carpet", "carpet"),
    ("AM", "beverage", "石榴汁", "pomegranate juice", "pomegranate-juice"),
    ("AM", "handicraft", "木雕", "wood carving", "wood-carving"),
    ("AZ", "beverage", "红茶", "black tea", "black-tea"),
    ("AZ", "food", "榛子", "hazelnuts", "hazelnuts"),
    ("AZ", "home_decor", "地毯", "carpet", "carpet"),
    ("AZ", "handicraft", "铜器", "copperware", "copperware"),
    ("AZ", "beverage", "石榴汁", "pomegranate juice", "pomegranate-juice"),
    ("AZ", "health", "藏红花", "saffron", "saffron"),
    ("BH", "jewelry", "珍珠饰品", "pearl jewellery", "pearl-jewellery"),
    ("BH", "food", "椰枣", "dates", "dates"),
    ("BH", "confectionery", "哈尔瓦甜点", "halwa", "halwa"),
    ("BH", "handicraft", "陶器", "pottery", "pottery"),
    ("BH", "textile", "手织布", "hand-woven cloth", "woven-cloth"),
    ("BY", "food", "炼乳", "condensed milk", "condensed-milk"),
    ("BY", "textile", "亚麻桌布", "linen tablecloth", "linen-tablecloth"),
    ("BY", "confectionery", "巧克力", "chocolate", "chocolate"),
    ("BY", "handicraft", "麦秆工艺品", "straw craft", "straw-craft"),
    ("BY", "health", "蜂蜜", "honey", "honey"),
    ("BY", "cosmetics", "护肤霜", "skin cream", "skin-cream"),
    ("EG", "food", "椰枣", "dates", "dates"),
    ("EG", "home_decor", "纸莎草画", "papyrus painting", "papyrus"),
    ("EG", "textile", "埃及棉床品", "Egyptian cotton bedding", "cotton-bedding"),
    ("EG", "beverage", "洛神花茶", "hibiscus tea", "hibiscus-tea"),
    ("EG", "cosmetics", "精油", "essential oil", "essential-oil"),
    ("EG", "handicraft", "铜盘", "brass plate", "brass-plate"),
    ("IN", "beverage", "大吉岭红茶", "Darjeeling tea", "darjeeling-tea"),
    ("IN", "food", "姜黄粉", "turmeric powder", "turmeric"),
    ("IN", "food", "腰果", "cashews", "cashews"),
    ("IN", "handicraft", "檀香木雕", "sandalwood carving", "sandalwood-carving"),
    ("IN", "textile", "丝绸纱丽", "silk sari", "silk-sari"),
    ("IN", "cosmetics", "阿育吠陀精油", "Ayurvedic oil", "ayurvedic-oil"),
    ("IR", "health", "藏红花", "saffron", "saffron"),
    ("IR", "food", "开心果", "pistachios", "pistachios"),
    ("IR", "food", "椰枣", "dates", "dates"),
    ("IR", "home_decor", "波斯地毯", "Persian carpet", "persian-carpet"),
    ("IR", "cosmetics", "玫瑰水", "rosewater", "rosewater"),
    ("IR", "confectionery", "牛轧糖", "gaz nougat", "gaz-nougat"),
    ("KG", "health", "白蜂蜜", "white honey", "white-honey"),
    ("KG", "textile", "毛毡拖鞋", "felt slippers", "felt-slippers"),
    ("KG", "food", "核桃", "walnuts", "walnuts"),
    ("KG", "home_decor", "毡毯", "shyrdak felt rug", "shyrdak"),
    ("KG", "food", "杏仁", "apricot kernels", "apricot-kernels"),
    ("KG", "handicraft", "毡制工艺品", "felt craft", "felt-craft"),
    ("KH", "food", "贡布胡椒", "Kampot pepper", "kampot-pepper"),
    ("KH", "confectionery", "棕榈糖", "palm sugar", "palm-sugar"),
    ("KH", "textile", "丝巾", "silk scarf", "silk-scarf"),
    ("KH", "food", "腰果", "cashews", "cashews"),
    ("KH", "food", "茉莉香米", "jasmine rice", "jasmine-rice"),
    ("KH", "handicraft", "银器", "silverware", "silverware"),
    ("KW", "food", "椰枣", "dates", "dates"),
    ("KW", "textile", "萨杜织物", "sadu weaving", "sadu"),
    ("KW", "beverage", "阿拉伯咖啡", "Arabic coffee", "arabic-coffee"),
    ("KW", "cosmetics", "乌木香水", "oud perfume", "oud-perfume"),
    ("KW", "confectionery", "哈尔瓦甜点", "halwa", "halwa"),
    ("KZ", "health", "骆驼奶粉", "camel milk powder", "camel-milk-powder"),
    ("KZ", "food", "苹果干", "dried apples", "dried-apples"),
    ("KZ", "handicraft", "毡制工艺品", "felt craft", "felt-craft"),
    ("KZ", "confectionery", "巧克力", "chocolate", "chocolate"),
    ("KZ", "health", "蜂蜜", "honey", "honey"),
    ("KZ", "food", "面粉", "wheat flour", "wheat-flour"),
    ("LA", "beverage", "咖啡", "coffee", "coffee"),
    ("LA", "textile", "手织丝绸", "hand-woven silk", "woven-silk"),
    ("LA", "food", "糯米", "sticky rice", "sticky-rice"),
    ("LA", "health", "沉香", "agarwood", "agarwood"),
    ("LA", "handicraft", "竹编", "bamboo basket", "bamboo-basket"),
    ("LK", "beverage", "锡兰红茶", "Ceylon tea", "ceylon-tea"),
    ("LK", "food", "肉桂", "cinnamon", "cinnamon"),
    ("LK", "jewelry", "蓝宝石首饰", "sapphire jewellery", "sapphire-jewellery"),
    ("LK", "cosmetics", "椰子油", "coconut oil", "coconut-oil"),
    ("LK", "textile", "蜡染布", "batik cloth", "batik"),
    ("MM", "jewelry", "翡翠", "jade", "jade"),
    ("MM", "food", "腌茶", "pickled tea leaves", "pickled-tea"),
    ("MM", "cosmetics", "特纳卡", "thanaka", "thanaka"),
    ("MM", "handicraft", "漆器", "lacquerware", "lacquerware"),
    ("MM", "textile", "纱笼", "longyi", "longyi"),
    ("MN", "textile", "羊绒衫", "cashmere sweater", "cashmere-sweater"),
    ("MN", "food", "牛肉干", "beef jerky", "beef-jerky"),
    ("MN", "beverage", "沙棘汁", "sea buckthorn juice", "sea-buckthorn-juice"),
    ("MN", "handicraft", "毡制工艺品", "felt craft", "felt-craft"),
    ("MN", "health", "牦牛奶粉", "yak milk powder", "yak-milk-powder"),
    ("MV", "food", "金枪鱼罐头", "canned tuna", "canned-tuna"),
    ("MV", "food", "椰子片", "coconut chips", "coconut-chips"),
    ("MV", "handicraft", "漆器", "lacquer work", "lacquer-work"),
    ("MV", "cosmetics", "椰子油", "coconut oil", "coconut-oil"),
    ("MV", "textile", "手织草席", "woven mat", "woven-mat"),
    ("MY", "beverage", "白咖啡", "white coffee", "white-coffee"),
    ("MY", "health", "燕窝", "bird's nest", "birds-nest"),
    ("MY", "handicraft", "锡器", "pewterware", "pewterware"),
    ("MY", "textile", "蜡染布", "batik cloth", "batik"),
    ("MY", "food", "榴莲干", "durian chips", "durian-chips"),
    ("NP", "beverage", "喜马拉雅红茶", "Himalayan tea", "himalayan-tea"),
    ("NP", "textile", "羊绒披肩", "pashmina shawl", "pashmina"),
    ("NP", "handicraft", "颂钵", "singing bowl", "singing-bowl"),
    ("NP", "home_decor", "唐卡", "thangka", "thangka"),
    ("NP", "health", "野蜂蜜", "wild honey", "wild-honey"),
    ("PK", "home_decor", "喜马拉雅盐灯", "Himalayan salt lamp", "salt-lamp"),
    ("PK", "food", "巴斯马蒂大米", "basmati rice", "basmati-rice"),
    ("PK", "handicraft", "木雕", "woodcraft", "woodcraft"),
    ("PK", "food", "芒果干", "dried mango", "dried-mango"),
    ("PK", "home_decor", "缟玛瑙摆件", "onyx ornament", "onyx-ornament"),
    ("PK", "textile", "羊绒披肩", "pashmina shawl", "pashmina"),
    ("QA", "food", "椰枣", "dates", "dates"),
    ("QA", "jewelry", "珍珠饰品", "pearl jewellery", "pearl-jewellery"),
    ("QA", "beverage", "阿拉伯咖啡", "Arabic coffee", "arabic-coffee"),
    ("QA", "cosmetics", "乌木香水", "oud perfume", "oud-perfume"),
    ("QA", "confectionery", "骆驼奶巧克力", "camel milk chocolate", "camel-chocolate"),
    ("RU", "health", "蜂蜜", "honey", "honey"),
    ("RU", "confectionery", "巧克力", "chocolate", "chocolate"),
    ("RU", "handicraft", "套娃", "matryoshka doll", "matryoshka"),
    ("RU", "food", "荞麦", "buckwheat", "buckwheat"),
    ("RU", "food", "松子", "pine nuts", "pine-nuts"),
    ("RU", "jewelry", "琥珀饰品", "amber jewellery", "amber-jewellery"),
    ("RU", "beverage", "格瓦斯", "kvass", "kvass"),
    ("SA", "food", "椰枣", "dates", "dates"),
    ("SA", "beverage", "阿拉伯咖啡", "Arabic coffee", "arabic-coffee"),
    ("SA", "cosmetics", "乌木香水", "oud perfume", "oud-perfume"),
    ("SA", "health", "西德尔蜂蜜", "sidr honey", "sidr-honey"),
    ("SA", "home_decor", "香炉", "incense burner", "incense-burner"),
    ("TH", "food", "茉莉香米", "jasmine rice", "jasmine-rice"),
    ("TH", "food", "芒果干", "dried mango", "dried-mango"),
    ("TH", "cosmetics", "椰子油", "coconut oil", "coconut-oil"),
    ("TH", "textile", "泰丝", "Thai silk", "thai-silk"),
    ("TH", "food", "冬阴功酱", "tom yum paste", "tom-yum-paste"),
    ("TH", "handicraft", "木雕大象", "carved wooden elephant", "wooden-elephant"),
    ("TJ", "food", "杏干", "dried apricots", "dried-apricots"),
    ("TJ", "textile", "丝绸", "silk", "silk"),
    ("TJ", "beverage", "绿茶", "green tea", "green-tea"),
    ("TJ", "health", "蜂蜜", "honey", "honey"),
    ("TJ", "handicraft", "刺绣挂毯", "suzani embroidery", "suzani"),
    ("TR", "confectionery", "土耳其软糖", "Turkish delight", "turkish-delight"),
    ("TR", "beverage", "土耳其咖啡", "Turkish coffee", "turkish-coffee"),
    ("TR", "textile", "棉浴巾", "cotton towel", "cotton-towel"),
    ("TR", "home_decor", "蓝眼睛挂饰", "evil eye charm", "evil-eye"),
    ("TR", "food", "榛子", "hazelnuts", "hazelnuts"),
    ("TR", "cosmetics", "玫瑰精油", "rose oil", "rose-oil"),
    ("UZ", "food", "核桃", "walnuts", "walnuts"),
    ("UZ", "food", "葡萄干", "raisins", "raisins"),
    ("UZ", "confectionery", "饼干", "biscuits", "biscuits"),
    ("UZ", "food", "杏干", "dried apricots", "dried-apricots"),
    ("UZ", "textile", "丝绸围巾", "ikat silk scarf", "ikat-scarf"),
    ("UZ", "handicraft", "陶瓷盘", "ceramic plate", "ceramic-plate"),
    ("UZ", "beverage", "绿茶", "green tea", "green-tea"),
    ("UZ", "health", "蜂蜜", "honey", "honey"),
];

/// Grades per kind of goods: (zh-CN, English, id part, price factor).
fn grades(category: &str) -> &'static [(&'static str, &'static str, &'static str, f64)] {
    match category {
        "food" | "confectionery" | "beverage" | "health" => &[
            ("精选", "select", "select", 1.0),
            ("特级", "premium", "premium", 1.4),
            ("有机", "organic", "organic", 1.6),
        ],
        _ => &[
            ("经典", "classic", "classic", 1.0),
            ("手工", "handmade", "handmade", 1.5),
            ("珍藏", "collector's", "collector", 2.5),
        ],
    }
}

/// Pack sizes per kind of goods: (zh-CN, English, id part, price factor).
fn sizes(category: &str) -> &'static [(&'static str, &'static str, &'static str, f64)] {
    match category {
        "food" | "confectionery" | "beverage" | "health" => &[
            ("250克", "250 g", "250g", 0.6),
            ("500克", "500 g", "500g", 1.0),
            ("1千克", "1 kg", "1kg", 1.8),
            ("礼盒装", "gift box", "gift-box", 2.2),
        ],
        "cosmetics" => &[
            ("30毫升", "30 ml", "30ml", 0.7),
            ("100毫升", "100 ml", "100ml", 1.0),
            ("礼盒装", "gift set", "gift-set", 1.9),
        ],
        _ => &[("小号", "small", "small", 0.7), ("中号", "medium", "medium", 1.0), ("大号", "large", "large", 1.6)],
    }
}

/// Price bands in CNY fen for a medium, select item of each category.
fn band(category: &str) -> (i64, i64) {
    match category {
        "food" => (2_500, 9_000),
        "beverage" => (3_000, 12_000),
        "confectionery" => (2_000, 7_000),
        "health" => (6_000, 30_000),
        "cosmetics" => (5_000, 30_000),
        "handicraft" => (8_000, 60_000),
        "home_decor" => (12_000, 90_000),
        "textile" => (9_000, 60_000),
        "jewelry" => (30_000, 300_000),
        _ => (5_000, 20_000),
    }
}

/// The dataset for `seed`, ordered by id.
pub fn generate(seed: u64) -> Vec<Row> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut rows = Vec::new();
    for &(country, country_zh, adjective) in COUNTRIES {
        for &(_, category, kind_zh, kind_en, stem) in KINDS.iter().filter(|k| k.0 == country) {
            let base = {
                let (low, high) = band(category);
                rng.random_range(low..=high)
            };
            for &(grade_zh, grade_en, grade_id, grade_factor) in grades(category) {
                for &(size_zh, size_en, size_id, size_factor) in sizes(category) {
                    // Round to .90 of a yuan, as shops price.
                    let raw = (base as f64 * grade_factor * size_factor) as i64;
                    let price = (raw / 100).max(1) * 100 + 90;
                    rows.push(Row {
                        id: format!("{}-{stem}-{grade_id}-{size_id}", country.to_ascii_lowercase()),
                        country: country.to_owned(),
                        category: category.to_owned(),
                        title_zh_cn: format!("{country_zh}{kind_zh}·{grade_zh}{size_zh}"),
                        title_en: format!("{adjective} {kind_en}, {grade_en}, {size_en}"),
                        title_ru: String::new(),
                        description_zh_cn: format!("来自{country_zh}的{kind_zh}，{grade_zh}，{size_zh}。"),
                        description_en: format!(
                            "{} from {}, {grade_en}, {size_en}.",
                            capitalise(kind_en),
                            country_name(country)
                        ),
                        price_currency: "CNY".to_owned(),
                        price_minor: price,
                        unit: size_en.to_owned(),
                        tags: vec![stem.to_owned(), country.to_ascii_lowercase(), category.to_owned()],
                        image_urls: vec![format!(
                            "https://images.caravan.example/{}/{stem}.jpg",
                            country.to_ascii_lowercase()
                        )],
                    });
                }
            }
        }
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    rows
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
}

fn country_name(code: &str) -> &'static str {
    match code {
        "AE" => "the United Arab Emirates",
        "AF" => "Afghanistan",
        "AM" => "Armenia",
        "AZ" => "Azerbaijan",
        "BH" => "Bahrain",
        "BY" => "Belarus",
        "EG" => "Egypt",
        "IN" => "India",
        "IR" => "Iran",
        "KG" => "Kyrgyzstan",
        "KH" => "Cambodia",
        "KW" => "Kuwait",
        "KZ" => "Kazakhstan",
        "LA" => "Laos",
        "LK" => "Sri Lanka",
        "MM" => "Myanmar",
        "MN" => "Mongolia",
        "MV" => "the Maldives",
        "MY" => "Malaysia",
        "NP" => "Nepal",
        "PK" => "Pakistan",
        "QA" => "Qatar",
        "RU" => "Russia",
        "SA" => "Saudi Arabia",
        "TH" => "Thailand",
        "TJ" => "Tajikistan",
        "TR" => "Türkiye",
        "UZ" => "Uzbekistan",
        _ => "its country",
    }
}

/// The dataset as JSON Lines.
pub fn to_jsonl(rows: &[Row]) -> anyhow::Result<String> {
    let mut out = String::new();
    for row in rows {
        out.push_str(&serde_json::to_string(row)?);
        out.push('\n');
    }
    Ok(out)
}

/// Adds `count` synthetic products (ids `zz-synthetic-…`, countries and
/// categories cycling through the dataset's) to the catalog at `addr`, to
/// measure reads at a large catalog size. Not for a festival's catalog.
pub async fn fill(addr: &str, key: &str, count: u64, batch: usize) -> anyhow::Result<u64> {
    let template = generate(SEED);
    let mut client = CatalogServiceClient::new(Authed::new(addr, Some(key), None)?);
    let progress = ProgressBar::new(count);
    let mut created = 0;
    let mut next = 0u64;
    while next < count {
        let n = (count - next).min(batch.max(1) as u64);
        let products = (next..next + n)
            .map(|i| {
                let base = &template[(i % template.len() as u64) as usize];
                let mut row = base.clone();
                row.id = format!("zz-synthetic-{i:08}");
                row.title_zh_cn = format!("{}（样品{i}）", base.title_zh_cn);
                row.title_en = format!("{} (sample {i})", base.title_en);
                row.to_product()
            })
            .collect();
        let response = client
            .import_products(ImportProductsRequest {
                products,
                initial_state: State::Active.into(),
                request_id: String::new(),
            })
            .await
            .map_err(|s| anyhow::anyhow!("filling: {}", s.message()))?
            .into_inner();
        created += u64::try_from(response.created_count).unwrap_or(0);
        next += n;
        progress.inc(n);
    }
    progress.finish_and_clear();
    Ok(created)
}
