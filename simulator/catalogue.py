"""The retailer's catalogue, stores and email campaigns: shared by every chunk of people."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from simulator import fmt
from simulator.config import DAY, Clock, SimConfig, global_rng

# (category path, repeat grocery?, price range in pence, product nouns). Names stay within latin-1:
# the store receipts are exported in that encoding.
LEAVES: tuple[tuple[str, bool, int, int, tuple[str, ...]], ...] = (
    ("Food > Dairy > Milk", True, 89, 199, ("Semi-Skimmed Milk", "Whole Milk", "Skimmed Milk", "Oat Drink")),
    (
        "Food > Dairy > Cheese",
        True,
        150,
        450,
        ("Mature Cheddar", "Red Leicester", "Brie de Meaux", "Gruyère"),
    ),
    ("Food > Dairy > Yoghurt", True, 60, 250, ("Greek Style Yoghurt", "Natural Yoghurt", "Crème Fraîche")),
    (
        "Food > Dairy > Butter & Eggs",
        True,
        120,
        350,
        ("Salted Butter", "Free Range Eggs", "Spreadable Butter"),
    ),
    ("Food > Bakery > Bread", True, 55, 180, ("White Loaf", "Wholemeal Loaf", "Sourdough", "Crumpets")),
    (
        "Food > Bakery > Pastries",
        True,
        90,
        300,
        ("Croissants", "Pain au Chocolat", "Éclairs", "Hot Cross Buns"),
    ),
    ("Food > Fresh > Fruit", True, 70, 350, ("Bananas", "Gala Apples", "Blueberries", "Easy Peelers")),
    ("Food > Fresh > Vegetables", True, 40, 200, ("Broccoli", "Carrots", "Baby Potatoes", "Mushrooms")),
    ("Food > Fresh > Salad", True, 60, 200, ("Cherry Tomatoes", "Cucumber", "Mixed Leaf Salad", "Avocados")),
    ("Food > Meat & Fish > Chicken", True, 250, 700, ("Chicken Breast Fillets", "Whole Chicken", "Thighs")),
    ("Food > Meat & Fish > Beef & Pork", True, 250, 900, ("Beef Mince", "Pork Sausages", "Smoked Bacon")),
    ("Food > Meat & Fish > Fish", True, 300, 800, ("Salmon Fillets", "Cod Fillets", "King Prawns")),
    ("Food > Pantry > Pasta & Rice", True, 60, 250, ("Penne", "Spaghetti", "Basmati Rice", "Risotto Rice")),
    (
        "Food > Pantry > Tins & Jars",
        True,
        40,
        300,
        ("Chopped Tomatoes", "Baked Beans", "Pesto", "Tomato Purée"),
    ),
    ("Food > Pantry > Breakfast", True, 120, 400, ("Porridge Oats", "Granola", "Cornflakes", "Marmalade")),
    ("Food > Pantry > Coffee & Tea", True, 150, 650, ("Ground Coffee", "Café Crema Beans", "Breakfast Tea")),
    (
        "Food > Pantry > Snacks",
        True,
        60,
        300,
        ("Sea Salt Crisps", "Jalapeño Crisps", "Digestives", "Dark Chocolate"),
    ),
    ("Food > Frozen > Ready Meals", True, 200, 600, ("Lasagne", "Chicken Tikka Masala", "Fish Pie", "Pizza")),
    ("Food > Frozen > Ice Cream", True, 150, 500, ("Vanilla Ice Cream", "Mint Choc Chip", "Sorbet")),
    (
        "Drinks > Soft Drinks > Juice & Water",
        True,
        50,
        300,
        ("Orange Juice", "Apple Juice", "Sparkling Water"),
    ),
    ("Drinks > Soft Drinks > Fizzy", True, 80, 500, ("Cola", "Lemonade", "Ginger Beer", "Diet Cola")),
    ("Drinks > Alcohol > Wine", True, 550, 1500, ("Sauvignon Blanc", "Rioja", "Rosé", "Côtes du Rhône")),
    ("Drinks > Alcohol > Beer & Cider", True, 150, 1200, ("Pale Ale", "Lager", "Apple Cider", "Stout")),
    ("Household > Cleaning > Laundry", True, 250, 1200, ("Bio Laundry Liquid", "Fabric Conditioner")),
    (
        "Household > Cleaning > Kitchen",
        True,
        100,
        600,
        ("Washing Up Liquid", "Dishwasher Tablets", "Bin Bags"),
    ),
    (
        "Household > Paper > Toilet & Kitchen Roll",
        True,
        200,
        900,
        ("Toilet Tissue", "Kitchen Roll", "Tissues"),
    ),
    ("Health & Beauty > Toiletries > Hair & Body", True, 100, 600, ("Shampoo", "Conditioner", "Shower Gel")),
    ("Health & Beauty > Toiletries > Dental", True, 100, 500, ("Toothpaste", "Mouthwash", "Toothbrushes")),
    ("Baby > Baby Care > Nappies & Wipes", True, 200, 1200, ("Nappies Size 3", "Baby Wipes", "Baby Purée")),
    ("Pet > Pet Food > Cat", True, 150, 1500, ("Cat Food Pouches", "Dry Cat Food", "Cat Treats")),
    ("Pet > Pet Food > Dog", True, 150, 2500, ("Dog Food Tins", "Dry Dog Food", "Dog Chews")),
    (
        "Home > Kitchen > Cookware",
        False,
        1200,
        8000,
        ("Frying Pan", "Casserole Dish", "Saucepan Set", "Soufflé Dish"),
    ),
    ("Home > Kitchen > Small Appliances", False, 1500, 15000, ("Kettle", "Toaster", "Air Fryer", "Blender")),
    ("Home > Kitchen > Utensils", False, 300, 2500, ("Knife Block", "Utensil Set", "Chopping Board")),
    (
        "Home > Living > Cushions & Throws",
        False,
        800,
        4500,
        ("Velvet Cushion", "Knitted Throw", "Faux Fur Throw"),
    ),
    ("Home > Living > Lighting & Candles", False, 500, 6000, ("Table Lamp", "Floor Lamp", "Scented Candle")),
    ("Home > Bedroom > Bedding", False, 1500, 9000, ("Duvet Cover Set", "Fitted Sheet", "Pillow Pair")),
    ("Home > Bathroom > Towels", False, 600, 3500, ("Bath Towel", "Hand Towel", "Bath Mat")),
    ("Fashion > Women > Dresses", False, 1800, 8000, ("Midi Dress", "Wrap Dress", "Shirt Dress", "Négligé")),
    ("Fashion > Women > Tops & Knitwear", False, 1000, 6000, ("Cotton T-Shirt", "Cashmere Jumper", "Blouse")),
    (
        "Fashion > Men > Shirts & Knitwear",
        False,
        1200,
        6000,
        ("Oxford Shirt", "Crew Neck Jumper", "Polo Shirt"),
    ),
    ("Fashion > Men > Trousers & Jeans", False, 1800, 7000, ("Slim Jeans", "Chinos", "Joggers")),
    (
        "Fashion > Shoes > Trainers & Boots",
        False,
        2500,
        12000,
        ("Running Trainers", "Chelsea Boots", "Pumps"),
    ),
    (
        "Electronics > Audio > Headphones & Speakers",
        False,
        1500,
        25000,
        ("Wireless Earbuds", "Headphones", "Speaker"),
    ),
    (
        "Electronics > Computing > Tablets & Accessories",
        False,
        1000,
        40000,
        ("Tablet", "Wireless Mouse", "Keyboard"),
    ),
    ("Electronics > TV > Televisions", False, 25000, 120000, ("43in 4K TV", "55in 4K TV", "65in OLED TV")),
    ("Electronics > TV > Cables & Mounts", False, 500, 4000, ("HDMI Cable", "TV Wall Bracket", "Soundbar")),
    (
        "Garden > Outdoor > Furniture & BBQ",
        False,
        3000,
        30000,
        ("Bistro Set", "Charcoal BBQ", "Garden Bench"),
    ),
    ("Garden > Outdoor > Plants & Care", False, 300, 3000, ("Lavender Plant", "Compost 50L", "Herb Trio")),
    ("Toys & Games > Toys > Toys", False, 800, 6000, ("Building Blocks Set", "Remote Control Car", "Piñata")),
    ("Toys & Games > Games > Board Games", False, 1000, 4000, ("Family Board Game", "Jigsaw", "Card Game")),
    ("Beauty > Fragrance > Fragrance", False, 2000, 9000, ("Eau de Parfum", "Eau de Toilette", "Gift Set")),
    ("Beauty > Skincare > Skincare", False, 600, 4500, ("Day Cream", "Night Serum", "Cleansing Balm")),
)
# A discovery purchase often leads to one from a related leaf (the pan, then the utensils).
COMPLEMENTS = {
    "Home > Kitchen > Cookware": "Home > Kitchen > Utensils",
    "Home > Kitchen > Small Appliances": "Home > Kitchen > Utensils",
    "Home > Bedroom > Bedding": "Home > Bathroom > Towels",
    "Fashion > Women > Dresses": "Fashion > Shoes > Trainers & Boots",
    "Fashion > Men > Trousers & Jeans": "Fashion > Men > Shirts & Knitwear",
    "Electronics > TV > Televisions": "Electronics > TV > Cables & Mounts",
    "Garden > Outdoor > Furniture & BBQ": "Garden > Outdoor > Plants & Care",
    "Toys & Games > Toys > Toys": "Toys & Games > Games > Board Games",
    "Beauty > Fragrance > Fragrance": "Beauty > Skincare > Skincare",
}
GROCERY_BRANDS = ("Tessera Everyday", "Tessera Finest", "Greenfield", "Oakley Farm", "Little Acre", "Harbour")
DISCOVERY_BRANDS = {
    "Home": ("Hearth & Home", "Linden", "Maison Clé", "Tessera Home"),
    "Fashion": ("Hartley & Co", "Marlowe", "Élan", "Fenwick Row"),
    "Electronics": ("Voltra", "Sonique", "Auralis", "Pixelon"),
    "Garden": ("Greenthumb", "Bramble"),
    "Toys & Games": ("Tumble", "Kite & Co"),
    "Beauty": ("Lumière", "Bloom"),
}
SIZES = ("", " 500g", " 1kg", " 4 Pack", " Large", " Family Size")
COLOURS = ("", " Navy", " Black", " Sage", " Cream", " Grey", " Blush")
CAMPAIGN_THEMES = ("Weekly offers", "New in", "Weekend treats", "Home refresh", "Style edit", "Tech deals")
SKUS_PER_GROCERY_LEAF = 45
SKUS_PER_DISCOVERY_LEAF = 35
STORES = 40


@dataclass(frozen=True)
class Catalogue:
    """Products as aligned arrays (index = product number), plus stores and campaigns."""

    products: pd.DataFrame  # sku, name, category, brand, price_pence, leaf, group, grocery, ...
    leaf_names: tuple[str, ...]
    grocery_leaves: np.ndarray
    discovery_leaves: np.ndarray
    discovery_groups: tuple[str, ...]
    leaf_start: np.ndarray  # first product index of each leaf
    leaf_size: np.ndarray
    store_towns: np.ndarray  # town index of each store
    campaign_times: np.ndarray  # epoch seconds of each campaign's send
    campaign_ids: np.ndarray
    campaign_names: np.ndarray


def build_catalogue(seed: int, clock: Clock, config: SimConfig, n_towns: int) -> Catalogue:
    """The products, stores and campaigns of the simulated retailer (the same for every chunk)."""
    rng = global_rng(seed, 1)
    rows: list[dict[str, object]] = []
    leaf_start, leaf_size = [], []
    for leaf, (path, grocery, lo, hi, nouns) in enumerate(LEAVES):
        group = path.split(" > ")[0]
        brands = GROCERY_BRANDS if grocery else DISCOVERY_BRANDS[group]
        extras = SIZES if grocery else COLOURS
        count = SKUS_PER_GROCERY_LEAF if grocery else SKUS_PER_DISCOVERY_LEAF
        leaf_start.append(len(rows))
        leaf_size.append(count)
        # log-uniform prices; own-label "Finest" a little dearer
        prices = np.exp(rng.uniform(np.log(lo), np.log(hi), count))
        for k in range(count):
            brand = brands[rng.integers(len(brands))]
            noun = nouns[rng.integers(len(nouns))]
            extra = extras[rng.integers(len(extras))]
            price = prices[k] * (1.3 if brand.endswith("Finest") else 1.0)
            rows.append(
                {
                    "name": f"{brand} {noun}{extra}",
                    "category": path,
                    "brand": brand,
                    "price_pence": int(round(price / 5.0) * 5 - 1) if price > 100 else int(round(price)),
                    "leaf": leaf,
                    "group": group,
                    "grocery": grocery,
                }
            )
    products = pd.DataFrame(rows)
    n = len(products)
    products.insert(0, "sku", (100_000 + rng.permutation(900_000)[:n]).astype(str))
    # Popularity within a leaf is Zipf-like: a few best sellers, a long tail.
    rank = np.concatenate([rng.permutation(s) for s in leaf_size])
    products["popularity"] = 1.0 / (rank + 2.0) ** 1.1
    discontinued = rng.random(n) < config.discontinued_share
    when = rng.integers(clock.start + 120 * DAY, clock.end - 10 * DAY, n)
    products["discontinued_at"] = np.where(discontinued, when, np.iinfo(np.int64).max)
    products["available"] = ~discontinued
    starts, sizes = np.array(leaf_start), np.array(leaf_size)
    products["substitute"] = _substitutes(rng, products, starts, sizes)
    leaf_names = tuple(leaf[0] for leaf in LEAVES)
    target_leaf = np.array([leaf_names.index(COMPLEMENTS.get(name, name)) for name in leaf_names])
    tl = target_leaf[products["leaf"].to_numpy()]
    products["complement"] = starts[tl] + rng.integers(0, sizes[tl])

    campaign_times = np.arange(clock.start + 3 * DAY, clock.end - DAY, config.campaign_every_days * DAY)
    campaign_times = campaign_times + 10 * 3600 + rng.integers(0, 3600, len(campaign_times))
    themes = np.array(CAMPAIGN_THEMES, dtype=object)[
        rng.integers(0, len(CAMPAIGN_THEMES), len(campaign_times))
    ]
    dates = pd.to_datetime(campaign_times, unit="s").strftime("%Y-%m-%d").to_numpy(dtype=object)
    return Catalogue(
        products=products,
        leaf_names=leaf_names,
        grocery_leaves=np.flatnonzero([leaf[1] for leaf in LEAVES]),
        discovery_leaves=np.flatnonzero([not leaf[1] for leaf in LEAVES]),
        discovery_groups=tuple(DISCOVERY_BRANDS),
        leaf_start=starts,
        leaf_size=sizes,
        store_towns=rng.integers(0, n_towns, STORES),
        campaign_times=campaign_times,
        campaign_ids=np.array([f"CMP{k + 1:05d}" for k in range(len(campaign_times))], dtype=object),
        campaign_names=themes + " " + dates,
    )


def _substitutes(
    rng: np.random.Generator, products: pd.DataFrame, starts: np.ndarray, sizes: np.ndarray
) -> np.ndarray:
    """For every product, an available product of the same leaf that replaces it once discontinued."""
    available = products["available"].to_numpy()
    result = np.arange(len(products))
    for start, size in zip(starts, sizes, strict=True):
        pool = start + np.flatnonzero(available[start : start + size])
        gone = start + np.flatnonzero(~available[start : start + size])
        result[gone] = pool[rng.integers(0, len(pool), len(gone))]
    return result


def products_export(catalogue: Catalogue) -> pa.Table:
    """The catalogue as the product system exports it."""
    p = catalogue.products
    return pa.table(
        {
            "sku": fmt.column(p, "sku"),
            "title": fmt.column(p, "name"),
            "category_path": fmt.column(p, "category"),
            "brand": fmt.column(p, "brand"),
            "price_gbp": fmt.money(p["price_pence"].to_numpy()),
            "in_stock": fmt.where(p["available"].to_numpy(), "Y", "N"),
            "vat_band": fmt.where(p["grocery"].to_numpy(), "Z", "S"),
        }
    )
